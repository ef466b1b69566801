//! VMCALL: the hypercall interface of rampart-hv-abi.

use super::policy;
use super::resume::{guest_cpl, Exception, Resume};
use crate::state;
use crate::stop;
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason::EXIT_REASON_COUNT;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{
    encode_result, HypercallError, HypercallResult, Registers, Request, ABI_VERSION,
    EXIT_COUNT_TOTAL, EXIT_REASON_VMCALL,
};

/// A VMCALL: decodes the request once from the saved registers (no other vCPU can change them),
/// hands its arguments to its handler and writes the result to RAX.
pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    // Hypercalls are for the guest kernel only: from user mode, VMCALL faults as natively.
    if guest_cpl(vmcs) != 0 {
        return Resume::Inject(Exception::InvalidOpcode);
    }
    let registers = Registers {
        rax: regs.rax,
        rdi: regs.rdi,
        rsi: regs.rsi,
        rdx: regs.rdx,
        r10: regs.r10,
    };
    regs.rax = encode_result(Request::decode(&registers).and_then(|r| dispatch(vmcs, r)));
    Resume::NextInstruction
}

#[rustfmt::skip] // one line per hypercall: the table reads as the ABI does
fn dispatch(vmcs: &Vmcs, request: Request) -> HypercallResult {
    use Request::*;
    match request {
        Version {} => Ok(u64::from(ABI_VERSION)),
        LogExitStats {} => log_exit_stats(),
        Shutdown {} => stop::shutdown(),
        ExitCount { reason } => exit_count(reason),
        ProtectRange { gpa, length, keep } => policy::protect_range(vmcs, gpa, length, keep),
        GrantExecute { gpa, length, initrd_offset: at } => policy::grant_execute(vmcs, gpa, length, at),
        RevokeExecute { gpa, length } => policy::revoke_execute(vmcs, gpa, length),
        LockSyscallMsrs {} => super::msr::lock_syscall_msrs(),
        ReadAuditLog { buffer, capacity, first } => policy::read_audit_log(buffer, capacity, first),
        AuditCount {} => Ok(crate::audit::LOG.lock().count()),
        ExitCycles {} => exit_cycles(),
        LockDescriptorTables { flags } => super::descriptor_tables::lock(vmcs, flags),
        StartVcpu { apic_id, rip, rsp, cr3 } => crate::smp::vcpu_start::handle(vmcs, apic_id, rip, rsp, cr3),
        LockKernelMappings { window_start: start, window_length: length, table, count } =>
            super::page_tables::lock(vmcs, start, length, table, count),
    }
}

fn log_exit_stats() -> HypercallResult {
    log::error!("exits: {}", state::STATS);
    log::error!("exits by vCPU: {}", crate::cpus::ExitsByVcpu);
    log::error!("{}", crate::selfcheck::Report);
    Ok(0)
}

/// A counter query, like ExitCount: left out of the counts it brackets.
fn exit_cycles() -> HypercallResult {
    state::STATS.record_query();
    Ok(state::STATS.cycles())
}

/// Answers an ExitCount hypercall; an unknown reason is an error, not a fault.
fn exit_count(selector: u64) -> HypercallResult {
    state::STATS.record_query();
    let reason = match selector {
        EXIT_COUNT_TOTAL => None,
        r if r < EXIT_REASON_COUNT as u64 => Some(r as u16),
        _ => return Err(HypercallError::InvalidArgument),
    };
    Ok(state::STATS.count_excluding_queries(reason, EXIT_REASON_VMCALL as u16))
}
