//! The GDB stub: the guest kernel debugged over COM2 with stock `gdb` (hypervisor/DESIGN.md "GDB
//! stub").
//!
//! `framing` and `walker`, `registers`, `breakpoints`, `monitor` are pure and host-tested;
//! `com2` (the UART), `memory` (guest memory), `control` (VMCS and debug registers) and
//! `session` (the `gdbstub` state machine across VM exits) touch the machine.

pub mod breakpoints;
mod com2;
mod control;
pub mod framing;
pub mod memory;
pub mod monitor;
pub mod registers;
mod session;
pub mod step;
pub mod target;
pub mod vcpus;

use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use gdbstub::common::Signal;

pub use session::{attached, hw_stop_reason, owns_sw_breakpoint, poll, StopReason};

/// Before the guest's first instruction (boot config `gdb = on`): programs COM2, makes #BP and
/// #DB exit, and serves the debugger until it resumes the guest.
pub fn wait_for_debugger(vmcs: &Vmcs, regs: &mut GuestRegisters) {
    // SAFETY: COM2 belongs to the hypervisor (the I/O bitmap denies it to the guest) and
    // nothing else has initialised or used it.
    #[allow(unsafe_code)]
    let _ = unsafe { com2::Com2::init() };
    control::trap_debug_exceptions(vmcs);
    log::info!(
        "gdb: single-step {}, Ctrl-C polling {}",
        step::describe(),
        if control::can_poll() {
            "by preemption timer"
        } else {
            "unavailable"
        }
    );
    log::info!("gdb: waiting for debugger on COM2");
    session::start(vmcs, regs);
    log::info!("gdb: debugger resumed the guest");
}

/// A vCPU started while a debugger is attached traps #BP and #DB too, and gets the debug
/// registers GDB set.
pub fn prepare_vcpu(vmcs: &Vmcs) {
    if attached() {
        control::trap_debug_exceptions(vmcs);
        vcpus::load_debug_registers(vmcs);
    }
}

/// Stops the guest into the attached debugger with `reason` and serves it until it resumes
/// the guest. False if no debugger is attached (the caller handles the event itself).
pub fn report_stop(vmcs: &Vmcs, regs: &mut GuestRegisters, reason: StopReason) -> bool {
    session::stop(vmcs, regs, reason)
}

/// The audit log's record count while a debugger is attached (`None` otherwise), taken when
/// an exit begins, for [`stop_if_blocked`].
pub fn audit_mark() -> Option<u64> {
    attached().then(|| crate::audit::LOG.lock().count())
}

/// After an exit handler ran: if it blocked a guest attempt (policy, MSR, CR and descriptor
/// table handlers all record one with `audit::block`) while a debugger is attached, the guest
/// stops as SIGSEGV at the offending instruction, with the fault it will receive already set
/// up; `monitor audit` shows the record.
pub fn stop_if_blocked(vmcs: &Vmcs, regs: &mut GuestRegisters, before: Option<u64>) {
    let Some(before) = before else { return };
    // Records of the debugger's own writes (made while this exit served gdb) are not attempts.
    let debugger = rampart_hv_abi::Rule::DebuggerWrite as u32;
    let blocked = crate::audit::LOG
        .lock()
        .since(before)
        .any(|r| r.rule != debugger);
    if blocked {
        report_blocked_attempt(vmcs, regs);
    }
}

/// A blocked guest attempt stops the guest as SIGSEGV while a debugger is attached.
pub fn report_blocked_attempt(vmcs: &Vmcs, regs: &mut GuestRegisters) -> bool {
    report_stop(vmcs, regs, StopReason::Signal(Signal::SIGSEGV))
}
