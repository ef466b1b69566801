//! VM-exit dispatch: count the exit, hand it to its handler, then resume the guest past the
//! instruction, or with an exception injected.

pub mod cpuid;
pub mod cr3;
pub mod cr_access;
#[cfg(feature = "gdb")]
pub mod debug;
pub mod descriptor_tables;
pub mod hypercall;
pub mod io;
pub mod ipi;
pub mod msr;
pub mod msr_bitmap;
pub mod nmi;
pub mod page_tables;
pub mod policy;
pub mod stop;
pub mod xsetbv;

use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason::{self, ExitReason, EXIT_REASON_ENTRY_FAILURE};
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::Ordering;
use rampart_hv_abi::{Access, Rule};
use x86::vmx::vmcs::{control, guest, ro};

/// What the guest does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Continue after the exiting instruction (it was emulated).
    NextInstruction,
    /// Deliver this exception at the exiting instruction (it faults, as on bare metal).
    Inject(Exception),
    /// Re-enter as the handler left the guest state (a debugger stop, or an event it set up).
    Unchanged,
}

/// Exceptions the hypervisor injects, numbered by vector (SDM Vol. 3A 7.3, Table 7-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    InvalidOpcode = 6,
    /// #DF: a blocked access while the guest's CPU was delivering an exception.
    DoubleFault = 8,
    GeneralProtection = 13,
    /// #VE: a blocked EPT access, reported to the guest kernel (no error code).
    VirtualizationException = 20,
}

/// VM-entry interruption-information fields (SDM Vol. 3C 25.8.3, Table 25-17).
const INTERRUPTION_TYPE_HARDWARE_EXCEPTION: u64 = 3 << 8;
const INTERRUPTION_DELIVER_ERROR_CODE: u64 = 1 << 11;
const INTERRUPTION_VALID: u64 = 1 << 31;
/// Interruption type NMI (Table 25-17), with vector 2.
const NMI_INTERRUPTION: u64 = (2 << 8) | 2 | INTERRUPTION_VALID;
/// Interruptibility state bits 0 and 1: blocking by STI / by MOV SS (25.4.2, Table 25-3),
/// which end once the guest moves past an instruction.
const BLOCKING_BY_STI_OR_MOV_SS: u64 = 0b11;

/// Rust side of the VM-exit stub (arch::vm_entry). Runs on the exit stack with the guest's
/// GPRs in `regs`; returning resumes the guest.
pub extern "sysv64" fn handle_exit(regs: &mut GuestRegisters) {
    // SAFETY: VM exits only happen after `boot` made the VMCS current, and it stays current.
    #[allow(unsafe_code)]
    let vmcs = unsafe { Vmcs::assume_current() };
    crate::smp::halt_if_stopping();
    let started = crate::arch::instructions::rdtsc();
    let reason_field = vmcs.get(ro::EXIT_REASON) as u32;
    let basic = exit_reason::basic(reason_field);
    state::STATS.record(basic);
    let slot = crate::smp::this_cpu();
    crate::smp::quiet::left_guest(slot);
    crate::smp::CPUS[slot].exits.fetch_add(1, Ordering::Relaxed);
    // Another vCPU is stopped in the debugger: wait (all-stop) before handling this exit.
    crate::gdb::vcpus::park_if_halted(&vmcs, regs, slot);
    let audits_before = crate::gdb::audit_mark();
    if reason_field & EXIT_REASON_ENTRY_FAILURE != 0 {
        stop::entry_failure_exit(&vmcs, regs, basic);
    }
    let resume = match ExitReason::from_basic(basic) {
        Some(ExitReason::Cpuid) => cpuid::handle(&vmcs, regs),
        Some(ExitReason::Vmcall) => hypercall::handle(&vmcs, regs),
        Some(ExitReason::Xsetbv) => xsetbv::handle(&vmcs, regs),
        Some(ExitReason::CrAccess) => cr_access::handle(&vmcs, regs),
        Some(ExitReason::IoInstruction) => io::handle(&vmcs, regs),
        Some(ExitReason::Invd | ExitReason::Wbinvd) => {
            // INVD would drop dirty lines the hypervisor may own; write them back instead.
            crate::arch::instructions::wbinvd();
            Resume::NextInstruction
        }
        Some(ExitReason::EptViolation) => policy::ept_violation(&vmcs),
        Some(ExitReason::Wrmsr) => msr::handle_write(&vmcs, regs),
        Some(ExitReason::Rdmsr) => msr::handle_read(&vmcs, regs),
        Some(reason) if reason.is_unoffered_instruction() => {
            Resume::Inject(Exception::InvalidOpcode)
        }
        // Real hardware latches an INIT sent to a CPU in VMX non-root as this exit (26.2); the
        // guest cannot send one (ICR filter), so it is stray: dropped, never fatal.
        Some(ExitReason::Init) => Resume::Unchanged,
        Some(ExitReason::GdtrIdtrAccess) => descriptor_tables::handle(&vmcs, regs, false),
        Some(ExitReason::LdtrTrAccess) => descriptor_tables::handle(&vmcs, regs, true),
        #[cfg(feature = "gdb")]
        Some(ExitReason::TripleFault) => debug::triple_fault(&vmcs, regs),
        #[cfg(not(feature = "gdb"))]
        Some(ExitReason::TripleFault) => stop::triple_fault(&vmcs, regs),
        Some(ExitReason::ExceptionOrNmi) if nmi::is_nmi(&vmcs) => nmi::handle(&vmcs, slot),
        #[cfg(feature = "gdb")]
        Some(ExitReason::ExceptionOrNmi) => debug::exception(&vmcs, regs),
        #[cfg(feature = "gdb")]
        Some(ExitReason::MonitorTrapFlag) => debug::monitor_trap(&vmcs, regs),
        #[cfg(feature = "gdb")]
        Some(ExitReason::PreemptionTimer) => debug::preemption_timer(&vmcs, regs),
        #[cfg(feature = "gdb")]
        Some(ExitReason::Hlt) => debug::hlt(&vmcs, regs),
        _ => stop::unexpected(&vmcs, regs, basic),
    };
    match resume {
        Resume::NextInstruction => advance_rip(&vmcs),
        Resume::Inject(exception) => inject(&vmcs, exception),
        Resume::Unchanged => {}
    }
    crate::gdb::stop_if_blocked(&vmcs, regs, audits_before);
    crate::gdb::vcpus::park_if_halted(&vmcs, regs, slot);
    nmi::deliver_pending(&vmcs, slot);
    state::STATS.add_cycles(crate::arch::instructions::rdtsc().wrapping_sub(started));
    crate::smp::quiet::entering_guest(slot);
}

fn advance_rip(vmcs: &Vmcs) {
    let rip = vmcs.get(guest::RIP);
    let length = vmcs.get(ro::VMEXIT_INSTRUCTION_LEN);
    vmcs.set(guest::RIP, rip.wrapping_add(length));
    clear_interruptibility(vmcs, BLOCKING_BY_STI_OR_MOV_SS);
}

/// Clears `bits` of the guest interruptibility state (SDM Vol. 3C 25.4.2, Table 25-3).
fn clear_interruptibility(vmcs: &Vmcs, bits: u64) {
    let state = vmcs.get(guest::INTERRUPTIBILITY_STATE);
    if state & bits != 0 {
        vmcs.set(guest::INTERRUPTIBILITY_STATE, state & !bits);
    }
}

fn inject(vmcs: &Vmcs, exception: Exception) {
    let mut info = exception as u64 | INTERRUPTION_TYPE_HARDWARE_EXCEPTION | INTERRUPTION_VALID;
    // #GP and #DF push an error code (SDM Vol. 3A 7.3, Table 7-1); #UD and #VE do not.
    if matches!(
        exception,
        Exception::GeneralProtection | Exception::DoubleFault
    ) {
        info |= INTERRUPTION_DELIVER_ERROR_CODE;
        vmcs.set(control::VMENTRY_EXCEPTION_ERR_CODE, 0);
    }
    vmcs.set(control::VMENTRY_INTERRUPTION_INFO_FIELD, info);
}

/// The guest's current privilege level: DPL of SS (SDM Vol. 3C 27.3.1.2 keeps it equal to CPL).
pub fn guest_cpl(vmcs: &Vmcs) -> u8 {
    const AR_DPL_SHIFT: u64 = 5;
    ((vmcs.get(guest::SS_ACCESS_RIGHTS) >> AR_DPL_SHIFT) & 0b11) as u8
}

/// Audits a refused register-like access (MSR, port, ICR, configuration write) at the
/// guest's RIP: `access` is READ or WRITE, `gpa` an address it names (0 if none), `detail`
/// the register number or value.
pub fn audit_register(vmcs: &Vmcs, rule: Rule, access: Access, gpa: u64, detail: u64) {
    crate::audit::block(crate::audit::Attempt {
        rule,
        access: Access::REGISTER | access,
        rip: guest_rip(vmcs),
        gva: 0,
        gpa,
        detail,
    });
}

/// The guest's RIP at the exit.
pub fn guest_rip(vmcs: &Vmcs) -> u64 {
    vmcs.get(guest::RIP)
}
