//! Applying the debugger's requests to the CPU: VMCS controls for single-step (`step`)
//! and Ctrl-C polling (VMX-preemption timer), the debug registers, and the register
//! frame GDB edited.
#![allow(unsafe_code)]

use super::breakpoints::{HwKind, HwSlot, HW_SLOTS};
use super::session::StopReason;
use super::target::{GuestTarget, ResumeMode};
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use gdbstub::target::ext::breakpoints::WatchKind;
use x86::vmx::vmcs::control::{self, PinbasedControls};
use x86::vmx::vmcs::guest;

/// Exception bitmap bits: #DB (vector 1) and #BP (vector 3) exit (SDM Vol. 3C 25.6.3).
pub const EXCEPTION_BITMAP_DEBUG: u64 = (1 << 1) | (1 << 3);
/// RFLAGS.RF (SDM Vol. 3B 19.3.1.1): resuming at an instruction breakpoint must not hit it again.
const RFLAGS_RF: u64 = 1 << 16;
/// TSC ticks between two Ctrl-C polls while the guest runs (the timer counts TSC >> rate).
const POLL_INTERVAL_TSC: u64 = 1 << 22;

/// True if the capability MSR allows `bit` to be 1 (allowed-1 half, SDM Vol. 3D A.3).
pub(super) fn allowed(capability: u64, bit: u32) -> bool {
    (capability >> 32) & u64::from(bit) != 0
}

pub(super) fn set_control(vmcs: &Vmcs, field: u32, bit: u32, on: bool) {
    let Ok(value) = vmcs.read(field) else { return };
    let value = if on {
        value | u64::from(bit)
    } else {
        value & !u64::from(bit)
    };
    // SAFETY: only the monitor-trap-flag, HLT-exiting and VMX-preemption-timer controls
    // change, each only when the capability MSR allows it (callers check): they add VM exits,
    // nothing else.
    if let Err(e) = unsafe { vmcs.write_host_or_control(field, value) } {
        log::error!("gdb: {e}");
    }
}

/// Makes #DB and #BP exit (called once when the session starts).
pub fn trap_debug_exceptions(vmcs: &Vmcs) {
    let bitmap = vmcs.read(control::EXCEPTION_BITMAP).unwrap_or(0);
    // SAFETY: more exceptions exit; the exit handlers reinject those that are not ours.
    if let Err(e) = unsafe {
        vmcs.write_host_or_control(control::EXCEPTION_BITMAP, bitmap | EXCEPTION_BITMAP_DEBUG)
    } {
        log::error!("gdb: {e}");
    }
}

/// True if the VMX-preemption timer is available (pin-based control bit 6).
pub fn can_poll() -> bool {
    allowed(
        state::get().caps.pinbased,
        PinbasedControls::VMX_PREEMPTION_TIMER.bits(),
    )
}

/// Turns the preemption timer off (no debugger to poll for).
pub fn stop_polling(vmcs: &Vmcs) {
    if can_poll() {
        set_control(
            vmcs,
            control::PINBASED_EXEC_CONTROLS,
            PinbasedControls::VMX_PREEMPTION_TIMER.bits(),
            false,
        );
    }
}

/// The stop reason for a hardware slot that hit.
pub fn stop_reason_of(slot: HwSlot) -> StopReason {
    match slot.kind {
        HwKind::Execute => StopReason::HwBreak(()),
        HwKind::Write => StopReason::Watch {
            tid: (),
            kind: WatchKind::Write,
            addr: slot.address,
        },
        HwKind::ReadWrite => StopReason::Watch {
            tid: (),
            kind: WatchKind::ReadWrite,
            addr: slot.address,
        },
    }
}

/// DR0-DR3 are not part of the VMCS: the CPU keeps them across VM entry and exit, so loading
/// them here (in VMX root, before VMRESUME) gives them to the guest (SDM Vol. 3C 28.3.1 saves
/// and 27.3.2.1 loads only DR7). With "load debug controls", entry loads DR7 from the VMCS
/// and exits reset DR7 to 400H (28.5.1), so the slots never fire in the hypervisor.
fn load_debug_registers(vmcs: &Vmcs, target: &GuestTarget) {
    let mut addresses = [0u64; HW_SLOTS];
    for (n, published) in addresses.iter_mut().enumerate() {
        let address = target.hw.slots[n].map_or(0, |s| s.address) as usize;
        *published = address as u64;
        // SAFETY: CPL0; DR0-DR3 only hold addresses, and DR7 in the host is 400H after
        // every VM exit, so they cannot fire while the hypervisor runs.
        unsafe {
            match n {
                0 => x86::debugregs::dr0_write(address),
                1 => x86::debugregs::dr1_write(address),
                2 => x86::debugregs::dr2_write(address),
                _ => x86::debugregs::dr3_write(address),
            }
        }
    }
    if let Err(e) = vmcs.write(guest::DR7, target.hw.dr7()) {
        log::error!("gdb: {e}");
    }
    // The parked vCPUs load the same when they go on.
    super::vcpus::publish_debug_registers(addresses, target.hw.dr7());
}

/// Applies what GDB asked for before the guest runs again.
pub fn apply(vmcs: &Vmcs, regs: &mut GuestRegisters, target: &mut GuestTarget, attached: bool) {
    if target.frame_changed {
        if let Err(e) = target.frame.store(vmcs, regs) {
            log::error!("gdb: {e}");
        }
        target.frame_changed = false;
    }
    if target.hw_changed {
        load_debug_registers(vmcs, target);
        target.hw_changed = false;
    }
    let step = target.resume == Some(ResumeMode::Step) && attached;
    if step {
        super::step::begin(vmcs);
    }
    if attached {
        skip_instruction_breakpoint(vmcs, target);
    }
    if can_poll() {
        let rate = state::get().caps.preemption_timer_rate();
        let _ = vmcs.write(guest::VMX_PREEMPTION_TIMER_VALUE, POLL_INTERVAL_TSC >> rate);
        // Also during a step: the stepped instruction may fault into a handler that runs
        // with TF clear (interrupt gates clear it) and never comes back, say to `cli; hlt`;
        // only the poll keeps Ctrl-C answered then (the step-hang reproduction).
        set_control(
            vmcs,
            control::PINBASED_EXEC_CONTROLS,
            PinbasedControls::VMX_PREEMPTION_TIMER.bits(),
            attached,
        );
    }
}

/// An instruction breakpoint is a fault (SDM Vol. 3B 19.2.4): resuming at its address with
/// RFLAGS.RF = 1 lets the instruction run once instead of stopping again at once.
fn skip_instruction_breakpoint(vmcs: &Vmcs, target: &GuestTarget) {
    let rip = vmcs.read(guest::RIP).unwrap_or(0);
    let at_breakpoint = target
        .hw
        .slots
        .iter()
        .flatten()
        .any(|s| s.kind == HwKind::Execute && s.address == rip);
    if at_breakpoint {
        let rflags = vmcs.read(guest::RFLAGS).unwrap_or(0);
        let _ = vmcs.write(guest::RFLAGS, rflags | RFLAGS_RF);
    }
}
