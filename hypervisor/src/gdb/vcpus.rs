//! All-stop across vCPUs: when one vCPU stops into the debugger, every other running vCPU is
//! brought into VMX root by an NMI, publishes its register frame and waits there until the
//! debugger resumes the guest; GDB sees each vCPU as a thread (thread N = slot N - 1). The
//! stopped vCPU serves GDB; the others apply what GDB changed in their frames, and the
//! debug registers GDB set, when they go on.
#![allow(unsafe_code)]

use super::registers::GuestFrame;
use crate::cpus::{CpuState, CPUS};
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use rampart_boot_info::MAX_CPUS;

/// Set while a vCPU is stopped in the debugger; `STOPPER` is its slot.
static HALT: AtomicBool = AtomicBool::new(false);
static STOPPER: AtomicUsize = AtomicUsize::new(0);
/// Each parked vCPU's frame (and whether GDB changed it).
static FRAMES: [spin::Mutex<Option<(GuestFrame, bool)>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];
static PARKED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// DR0-DR3 and DR7 as GDB last set them, for every vCPU to load when it goes on.
static DEBUG_REGISTERS: spin::Mutex<([u64; 4], u64)> = spin::Mutex::new(([0; 4], 0));
/// How long the stopping vCPU waits for the others to park (TSC cycles).
const PARK_TIMEOUT_CYCLES: u64 = 200_000_000;

/// True while another vCPU than `slot` is stopped in the debugger.
pub fn halted_by_other(slot: usize) -> bool {
    HALT.load(Ordering::SeqCst) && STOPPER.load(Ordering::SeqCst) != slot
}

/// Brings every other running vCPU to a halt (see the module doc); returns how many did not
/// park in time (they keep running, and GDB does not list them).
pub fn halt_others(me: usize) -> usize {
    STOPPER.store(me, Ordering::SeqCst);
    HALT.store(true, Ordering::SeqCst);
    let others = || {
        CPUS.iter()
            .enumerate()
            .filter(move |&(slot, cpu)| slot != me && cpu.state() == CpuState::Running)
            .map(|(slot, _)| slot)
    };
    others().for_each(crate::cpus::send_nmi);
    let started = crate::arch::instructions::rdtsc();
    while others().any(|slot| !PARKED[slot].load(Ordering::SeqCst)) {
        if crate::arch::instructions::rdtsc().wrapping_sub(started) > PARK_TIMEOUT_CYCLES {
            break;
        }
        core::hint::spin_loop();
    }
    others()
        .filter(|&slot| !PARKED[slot].load(Ordering::SeqCst))
        .count()
}

/// Lets the parked vCPUs go on.
pub fn resume_others() {
    HALT.store(false, Ordering::SeqCst);
}

/// Called by every VM exit on entry and before resuming: parks this vCPU while another one is
/// stopped in the debugger, then applies GDB's changes to its frame and debug registers.
pub fn park_if_halted(vmcs: &Vmcs, regs: &mut GuestRegisters, slot: usize) {
    if !halted_by_other(slot) {
        return;
    }
    let Ok(frame) = GuestFrame::load(vmcs, regs) else {
        return;
    };
    *FRAMES[slot].lock() = Some((frame, false));
    PARKED[slot].store(true, Ordering::SeqCst);
    while halted_by_other(slot) {
        core::hint::spin_loop();
    }
    if let Some((frame, true)) = FRAMES[slot].lock().take() {
        let _ = frame.store(vmcs, regs);
    }
    load_debug_registers(vmcs);
    PARKED[slot].store(false, Ordering::SeqCst);
}

/// The frame of a parked vCPU.
pub fn frame_of(slot: usize) -> Option<GuestFrame> {
    FRAMES.get(slot)?.lock().as_ref().map(|(frame, _)| *frame)
}

/// Replaces a parked vCPU's frame (GDB wrote its registers); false if it is not parked.
pub fn set_frame_of(slot: usize, frame: GuestFrame) -> bool {
    let Some(cell) = FRAMES.get(slot) else {
        return false;
    };
    let mut guard = cell.lock();
    match guard.as_mut() {
        Some(entry) if PARKED[slot].load(Ordering::SeqCst) => {
            *entry = (frame, true);
            true
        }
        _ => false,
    }
}

/// The slots of the parked vCPUs.
pub fn parked() -> impl Iterator<Item = usize> {
    (0..MAX_CPUS).filter(|&slot| PARKED[slot].load(Ordering::SeqCst))
}

/// Records the debug registers GDB set (the stopped vCPU loads its own in `control`).
pub fn publish_debug_registers(addresses: [u64; 4], dr7: u64) {
    *DEBUG_REGISTERS.lock() = (addresses, dr7);
}

/// Loads the published debug registers into this vCPU: DR0-DR3 into the CPU (they are not
/// switched by VMX) and DR7 into the VMCS (SDM Vol. 3C 27.3.2.1).
pub fn load_debug_registers(vmcs: &Vmcs) {
    let (addresses, dr7) = *DEBUG_REGISTERS.lock();
    // SAFETY: CPL0; DR0-DR3 only hold addresses, and the host's DR7 is 400H after every VM
    // exit, so they cannot fire in the hypervisor.
    unsafe {
        x86::debugregs::dr0_write(addresses[0] as usize);
        x86::debugregs::dr1_write(addresses[1] as usize);
        x86::debugregs::dr2_write(addresses[2] as usize);
        x86::debugregs::dr3_write(addresses[3] as usize);
    }
    let _ = vmcs.write(x86::vmx::vmcs::guest::DR7, dr7);
}
