//! VMCALL: the hypercall interface of rampart-hv-abi.
#![forbid(unsafe_code)]

use super::policy;
use super::resume::{guest_cpl, Exception, Resume};
use crate::state;
use crate::stop;
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason::EXIT_REASON_COUNT;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{
    Hypercall, HypercallError, ABI_VERSION, EXIT_COUNT_TOTAL, EXIT_REASON_VMCALL,
};

pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    // Hypercalls are for the guest kernel only: from user mode, VMCALL faults as natively.
    if guest_cpl(vmcs) != 0 {
        return Resume::Inject(Exception::InvalidOpcode);
    }
    regs.rax = match Hypercall::from_raw(regs.rax) {
        Some(Hypercall::Version) => u64::from(ABI_VERSION),
        Some(Hypercall::LogExitStats) => {
            log::error!("exits: {}", state::STATS);
            log::error!("exits by vCPU: {}", crate::cpus::ExitsByVcpu);
            log::error!("{}", crate::selfcheck::Report);
            0
        }
        Some(Hypercall::Shutdown) => stop::shutdown(),
        Some(Hypercall::ExitCount) => exit_count(regs.rdi),
        Some(Hypercall::ProtectRange) => policy::protect_range(vmcs, regs),
        Some(Hypercall::GrantExecute) => policy::grant_execute(vmcs, regs),
        Some(Hypercall::RevokeExecute) => policy::revoke_execute(vmcs, regs),
        Some(Hypercall::LockSyscallMsrs) => super::msr::lock_syscall_msrs(),
        Some(Hypercall::ReadAuditLog) => policy::read_audit_log(regs),
        Some(Hypercall::AuditCount) => crate::audit::LOG.lock().count(),
        Some(Hypercall::ExitCycles) => {
            // A counter query, like ExitCount: left out of the counts it brackets.
            state::STATS.record_query();
            state::STATS.cycles()
        }
        Some(Hypercall::LockDescriptorTables) => super::descriptor_tables::lock(vmcs, regs.rdi),
        Some(Hypercall::StartVcpu) => crate::smp::vcpu_start::handle(vmcs, regs),
        Some(Hypercall::LockKernelMappings) => super::page_tables::lock(vmcs, regs),
        None => HypercallError::NotSupported as i64 as u64,
    };
    Resume::NextInstruction
}

/// Answers an ExitCount hypercall; an unknown reason is an error, not a fault.
fn exit_count(selector: u64) -> u64 {
    state::STATS.record_query();
    let reason = match selector {
        EXIT_COUNT_TOTAL => None,
        r if r < EXIT_REASON_COUNT as u64 => Some(r as u16),
        _ => return HypercallError::InvalidArgument as i64 as u64,
    };
    state::STATS.count_excluding_queries(reason, EXIT_REASON_VMCALL as u16)
}
