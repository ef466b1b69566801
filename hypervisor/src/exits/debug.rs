//! Exits that belong to the debugger: #BP and #DB exceptions (exception bitmap bits 3 and 1,
//! set only with `gdb = on`; #DB also ends the stub's RFLAGS.TF steps), monitor-trap-flag steps, VMX-preemption-timer polls, and guest
//! triple faults while a debugger is attached.
#![forbid(unsafe_code)]

use super::resume::Resume;
use crate::gdb::{self, StopReason};
use crate::vcpu::GuestRegisters;
use crate::vmx::exit_reason::ExitReason;
use crate::vmx::vmcs::Vmcs;
use gdbstub::common::Signal;
use x86::vmx::vmcs::{control, guest, ro};

/// Interruption-information fields (SDM Vol. 3C 25.9.2 Table 25-19 for exits, 25.8.3 Table
/// 25-17 for entry): vector in bits 7:0, type in 10:8, error code valid bit 11, valid bit 31.
const VECTOR_MASK: u64 = 0xff;
const TYPE_HARDWARE_EXCEPTION: u64 = 3 << 8;
const TYPE_SOFTWARE_EXCEPTION: u64 = 6 << 8;
const VALID: u64 = 1 << 31;
const VECTOR_DEBUG: u64 = 1;
const VECTOR_BREAKPOINT: u64 = 3;
/// #DB exit qualification (28.2.1 Table 28-1): B0-B3 in bits 3:0, BS (single step) bit 14.
const DEBUG_QUALIFICATION_B0_B3: u64 = 0xf;

/// The exits the debugger handles: with the `gdb` feature, these never reach the production
/// dispatch in `exits::handle_exit` (an NMI is taken there first).
pub fn handles(reason: ExitReason) -> bool {
    use ExitReason::*;
    matches!(
        reason,
        ExceptionOrNmi | MonitorTrapFlag | PreemptionTimer | Hlt | TripleFault
    )
}

/// Dispatches an exit [`handles`] accepts.
pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters, reason: ExitReason) -> Resume {
    match reason {
        ExitReason::ExceptionOrNmi => exception(vmcs, regs),
        ExitReason::MonitorTrapFlag => monitor_trap(vmcs, regs),
        ExitReason::PreemptionTimer => preemption_timer(vmcs, regs),
        ExitReason::Hlt => hlt(vmcs, regs),
        ExitReason::TripleFault => triple_fault(vmcs, regs),
        other => crate::stop::unexpected(vmcs, regs, other as u16),
    }
}

/// An exception exit: only #BP and #DB are in the bitmap.
pub fn exception(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let info = vmcs.get(ro::VMEXIT_INTERRUPTION_INFO);
    redeliver_interrupted_event(vmcs);
    match info & VECTOR_MASK {
        VECTOR_BREAKPOINT => breakpoint(vmcs, regs),
        VECTOR_DEBUG => debug(vmcs, regs),
        _ => crate::stop::unexpected(vmcs, regs, 0),
    }
}

/// INT3 exits with RIP at the INT3 itself (SDM Vol. 3C 28.1: software exceptions save the
/// address of the instruction), which is the breakpoint address GDB expects.
fn breakpoint(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let rip = vmcs.get(guest::RIP);
    if gdb::vcpus::halted_by_other(crate::cpus::this_cpu()) {
        // The debugger is busy with another vCPU (its session is locked): re-execute the INT3
        // once this vCPU has parked and gone on, and decide then whose it is.
        return Resume::Unchanged;
    }
    if gdb::owns_sw_breakpoint(rip) && gdb::report_stop(vmcs, regs, StopReason::SwBreak(())) {
        return Resume::Unchanged;
    }
    // The guest's own INT3: deliver it as it would have been (a software exception needs the
    // instruction length, 25.8.3).
    let length = vmcs.get(ro::VMEXIT_INSTRUCTION_LEN);
    vmcs.set(control::VMENTRY_INSTRUCTION_LEN, length);
    vmcs.set(
        control::VMENTRY_INTERRUPTION_INFO_FIELD,
        VECTOR_BREAKPOINT | TYPE_SOFTWARE_EXCEPTION | VALID,
    );
    Resume::Unchanged
}

fn debug(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let qualification = vmcs.get(ro::EXIT_QUALIFICATION);
    let stepping = gdb::step::in_progress();
    if let Some(reason) = gdb::hw_stop_reason(qualification & DEBUG_QUALIFICATION_B0_B3) {
        if gdb::report_stop(vmcs, regs, reason) {
            return Resume::Unchanged;
        }
    }
    // The stub's own single step (gdb::step: RFLAGS.TF); `report_stop` restores the guest's TF.
    if stepping && qualification & gdb::step::QUALIFICATION_BS != 0 {
        if !gdb::report_stop(vmcs, regs, StopReason::DoneStep) {
            gdb::step::end(vmcs);
        }
        return Resume::Unchanged;
    }
    log::warn!("#DB not set by the debugger (qualification {qualification:#x}); reinjected");
    vmcs.set(
        control::VMENTRY_INTERRUPTION_INFO_FIELD,
        VECTOR_DEBUG | TYPE_HARDWARE_EXCEPTION | VALID,
    );
    Resume::Unchanged
}

/// If the exception hit while the CPU delivered another event (IDT-vectoring information
/// valid, 28.2.4), that event must be delivered again on entry (29.2.1.1 / 27.6).
fn redeliver_interrupted_event(vmcs: &Vmcs) {
    let vectoring = vmcs.read(ro::IDT_VECTORING_INFO).unwrap_or(0);
    if vectoring & VALID != 0 {
        let error = vmcs.read(ro::IDT_VECTORING_ERR_CODE).unwrap_or(0);
        let length = vmcs.read(ro::VMEXIT_INSTRUCTION_LEN).unwrap_or(0);
        vmcs.set(control::VMENTRY_EXCEPTION_ERR_CODE, error);
        vmcs.set(control::VMENTRY_INSTRUCTION_LEN, length);
        vmcs.set(control::VMENTRY_INTERRUPTION_INFO_FIELD, vectoring);
    }
}

/// Monitor trap flag: one instruction done (exit reason 37, SDM Vol. 3C 26.7.2).
pub fn monitor_trap(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    if !gdb::report_stop(vmcs, regs, StopReason::DoneStep) {
        gdb::poll(vmcs, regs); // turns the flag off when no debugger is attached
    }
    Resume::Unchanged
}

/// HLT (exit reason 12), which exits only while the stub steps (`gdb::step`): the step ends
/// after the HLT, as if an interrupt had woken it at once (a HLT may always resume early), and
/// the guest stops into the debugger instead of halting where nothing but Ctrl-C could reach
/// it. A HLT exit with no step armed (the control outlived it) is the same early wake.
pub fn hlt(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    super::resume::advance_rip(vmcs);
    if !(gdb::step::in_progress() && gdb::report_stop(vmcs, regs, StopReason::DoneStep)) {
        gdb::step::end(vmcs);
    }
    Resume::Unchanged
}

/// VMX-preemption timer (exit reason 52, 26.5.1): armed only while a debugger is attached and
/// the guest runs, to look for Ctrl-C.
pub fn preemption_timer(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    gdb::poll(vmcs, regs);
    Resume::Unchanged
}

/// A guest triple fault stops into an attached debugger as SIGSEGV (the guest cannot go on:
/// the session ends with the usual fatal report once the debugger resumes).
pub fn triple_fault(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    gdb::report_stop(vmcs, regs, StopReason::Signal(Signal::SIGSEGV));
    crate::stop::triple_fault(vmcs, regs)
}
