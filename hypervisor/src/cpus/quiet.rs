//! A quiet console: the guest and the hypervisor share COM1 (hypervisor/DESIGN.md), and with
//! several vCPUs the guest may be writing on another CPU while the hypervisor logs, which
//! interleaves the two character by character. So a hypervisor line is written while no other vCPU
//! runs guest code: each vCPU marks when it is in the guest, and the writer sends an NMI to those
//! that are and waits (with a time limit, after which it writes anyway) until they are in VMX
//! root, where they wait at their next VM entry until the line is out.

use super::{send_nmi, CpuState, CPUS};
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_boot_info::MAX_CPUS;

static QUIET: AtomicBool = AtomicBool::new(false);
static IN_GUEST: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// How long a writer waits for the others (TSC cycles), then writes anyway.
const WAIT_CYCLES: u64 = 20_000_000;

/// Runs `write` while no other vCPU runs guest code (see the module doc). Only one writer at a
/// time may call it (the console lock).
pub fn with_others_out_of_the_guest<R>(write: impl FnOnce() -> R) -> R {
    let me = super::this_cpu();
    let others_in_guest =
        || (0..MAX_CPUS).filter(move |&slot| slot != me && IN_GUEST[slot].load(Ordering::SeqCst));
    QUIET.store(true, Ordering::SeqCst);
    let running = others_in_guest().filter(|&slot| CPUS[slot].state() == CpuState::Running);
    running.for_each(send_nmi);
    crate::arch::instructions::spin_until(WAIT_CYCLES, || others_in_guest().next().is_none());
    let result = write();
    QUIET.store(false, Ordering::SeqCst);
    result
}

/// A VM exit began on `slot`: it no longer runs guest code.
pub fn left_guest(slot: usize) {
    IN_GUEST[slot].store(false, Ordering::SeqCst);
}

/// `slot` is about to enter the guest: waits while a hypervisor line is being written. The
/// mark goes up before the check (and the writer raises QUIET before reading the marks), so
/// one of the two always sees the other.
pub fn entering_guest(slot: usize) {
    loop {
        IN_GUEST[slot].store(true, Ordering::SeqCst);
        if !QUIET.load(Ordering::SeqCst) {
            return;
        }
        IN_GUEST[slot].store(false, Ordering::SeqCst);
        while QUIET.load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
    }
}
