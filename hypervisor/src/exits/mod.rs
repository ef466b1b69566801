//! VM-exit dispatch: count the exit, hand it to its handler, then resume the guest past the
//! instruction, or with an exception injected. The handlers' files are layered (see
//! `layering_tests::EXIT_FILES`): `resume` at the bottom, this dispatcher at the top.

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
pub mod resume;
pub mod xsetbv;

pub use resume::{Exception, Resume};

use crate::cpus::{self, CPUS};
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason::{self, ExitReason, EXIT_REASON_ENTRY_FAILURE};
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::Ordering;
use resume::{advance_rip, inject};
use x86::vmx::vmcs::ro;

/// Rust side of the VM-exit stub (arch::vm_entry). Runs on the exit stack with the guest's
/// GPRs in `regs`; returning resumes the guest.
pub fn handle_exit(regs: &mut GuestRegisters) {
    // SAFETY: VM exits only happen after `boot` made the VMCS current, and it stays current.
    #[allow(unsafe_code)]
    let vmcs = unsafe { Vmcs::assume_current() };
    cpus::halt_if_stopping();
    let started = crate::arch::instructions::rdtsc();
    let reason_field = vmcs.get(ro::EXIT_REASON) as u32;
    let basic = exit_reason::basic(reason_field);
    state::STATS.record(basic);
    let slot = cpus::this_cpu();
    cpus::quiet::left_guest(slot);
    CPUS[slot].exits.fetch_add(1, Ordering::Relaxed);
    // Another vCPU is stopped in the debugger: wait (all-stop) before handling this exit.
    crate::gdb::vcpus::park_if_halted(&vmcs, regs, slot);
    let audits_before = crate::gdb::audit_mark();
    if reason_field & EXIT_REASON_ENTRY_FAILURE != 0 {
        crate::stop::entry_failure_exit(&vmcs, regs, basic);
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
        Some(ExitReason::ExceptionOrNmi) if nmi::is_nmi(&vmcs) => nmi::handle(&vmcs, slot),
        #[cfg(feature = "gdb")]
        Some(reason) if debug::handles(reason) => debug::handle(&vmcs, regs, reason),
        Some(ExitReason::TripleFault) => crate::stop::triple_fault(&vmcs, regs),
        _ => crate::stop::unexpected(&vmcs, regs, basic),
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
    cpus::quiet::entering_guest(slot);
}
