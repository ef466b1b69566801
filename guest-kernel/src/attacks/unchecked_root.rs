//! `crash=unchecked-root`: a test of the page-table lock's fail-closed stop. Just before the
//! kernel calls `LockKernelMappings`, every waiting AP switches to a copy of the boot CPU's
//! root (the same kernel half in a frame nobody declared). The lock reaches those vCPUs
//! through its shootdown, finds them on an undeclared root and must stop the machine rather
//! than trust tables it never walked. Natively and under `pagetables = off` the boot goes on:
//! each AP returns to its own root when released (`smp::ap_main`).
#![allow(unsafe_code)] // the detour itself; each block says why it is harmless

use crate::arch::cpu;
use crate::arch::phys::Frames;
use crate::console::kprintln;
use crate::mm::address_space::PhysMemory;
use crate::mm::layout::phys_to_virt;
use crate::mm::page_table::{ADDRESS_MASK, PAGE_SIZE};
use crate::smp;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The root the waiting APs switch to (0: none asked).
static DETOUR_ROOT: AtomicU64 = AtomicU64::new(0);
/// Bit N: CPU N runs on [`DETOUR_ROOT`].
static DETOURED: AtomicU32 = AtomicU32::new(0);
/// Rounds of [`smp::wait_politely`] to wait for the APs (each is woken by an IPI at once).
const WAIT_ROUNDS: u64 = 50_000_000;

/// Boot CPU, before the lock: moves every online AP to a fresh copy of the current root and
/// says which did.
pub fn detour_waiting_aps() {
    let current = cpu::read_cr3() & ADDRESS_MASK;
    let Some(copy) = Frames.allocate() else {
        kprintln!("crash=unchecked-root: out of memory");
        return;
    };
    // SAFETY: `copy` was just allocated (nothing else uses it) and `current` is the live root;
    // both are whole pages in the direct map and cannot overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(current) as *const u8,
            phys_to_virt(copy) as *mut u8,
            PAGE_SIZE as usize,
        )
    };
    DETOUR_ROOT.store(copy, Ordering::SeqCst);
    let mut others = 0u32;
    for (index, _) in smp::online().filter(|&(index, _)| index != 0) {
        others |= 1 << index;
        smp::kick(index);
    }
    let mut rounds = 0;
    while DETOURED.load(Ordering::SeqCst) != others && rounds < WAIT_ROUNDS {
        smp::wait_politely();
        rounds += 1;
    }
    kprintln!(
        "crash=unchecked-root: CPUs {:#x} of {others:#x} now run on {copy:#x}, an undeclared copy of the boot CPU's root {current:#x}; locking the page tables",
        DETOURED.load(Ordering::SeqCst)
    );
}

/// An AP's start-up wait: switches to the detour root once it is asked for.
pub fn take_detour(index: usize) {
    let root = DETOUR_ROOT.load(Ordering::SeqCst);
    if root == 0 || DETOURED.load(Ordering::SeqCst) & (1 << index) != 0 {
        return;
    }
    // SAFETY: the detour root is a page-for-page copy of the kernel root this AP runs on, so
    // every translation (code, stack, per-CPU data) stays the same.
    unsafe { cpu::write_cr3(root) };
    DETOURED.fetch_or(1 << index, Ordering::SeqCst);
}
