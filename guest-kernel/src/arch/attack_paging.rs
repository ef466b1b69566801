//! The raw instructions of the page-table attacks (`attacks::remap`, cargo feature
//! `attacks`): SGDT, and a forged #BP handler with the INT3 that shows whether it is live.
//! Natively each is harmless because the callers restore what they
//! changed at once; under `pagetables = locked` the step before (a page-table write, a CR3
//! load) is refused and ends the calling kernel thread.

use super::gdt::DescriptorTablePointer;
use core::arch::{asm, naked_asm};
use core::sync::atomic::{AtomicU64, Ordering};

/// Times [`forged_breakpoint`] ran.
static FORGED_HITS: AtomicU64 = AtomicU64::new(0);

/// A #BP handler an attacker would install: counts the hit and returns (SDM Vol. 3A 6.12.1: a
/// trap's saved RIP is the next instruction, and #BP pushes no error code, so IRETQ resumes).
#[unsafe(naked)]
pub extern "sysv64" fn forged_breakpoint() {
    naked_asm!(
        "lock inc qword ptr [rip + {hits}]",
        "iretq",
        hits = sym FORGED_HITS,
    )
}

/// Runs of [`forged_breakpoint`] so far.
pub fn forged_hits() -> u64 {
    FORGED_HITS.load(Ordering::SeqCst)
}

/// INT3 (#BP, vector 3).
///
/// # Safety
/// The gate of vector 3 in the IDT as currently reached must lead to a handler that returns
/// (the kernel's own, which reports a kernel breakpoint, or [`forged_breakpoint`]), or the
/// caller must be a kernel thread that may die of the fault.
pub unsafe fn breakpoint() {
    // SAFETY: delegated to the caller. Not `nostack`: the CPU pushes the exception frame on
    // this stack (same privilege level, no IST for #BP; SDM Vol. 3A 6.14.2).
    unsafe { asm!("int3") };
}

/// The GDT register: (base, limit).
pub fn sgdt() -> (u64, u16) {
    let mut pointer = DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: SGDT only stores 10 bytes into `pointer` (emulated by Rampart once the tables
    // are locked).
    unsafe { asm!("sgdt [{}]", in(reg) &raw mut pointer, options(nostack, preserves_flags)) };
    (pointer.base, pointer.limit)
}
