//! The first entry of a kernel thread: its stack is prepared so that the first
//! `switch::switch` to it "returns" into `enter_kernel_thread`, which calls the thread's body
//! with its argument in ring 0, on the thread's own kernel stack, with interrupts off (as the
//! scheduler switched with them off).
// Only the attack suite starts kernel threads so far.
#![cfg_attr(not(feature = "attacks"), allow(dead_code))]

use core::arch::global_asm;

global_asm!(
    ".section .text",
    "enter_kernel_thread:",
    "    pop rdi",
    "    pop rax",
    "    call rax",
    "    ud2",
    ".global __enter_kernel_thread",
    ".set __enter_kernel_thread, enter_kernel_thread",
);

extern "C" {
    static __enter_kernel_thread: u8;
}

/// A kernel thread's body: runs with its argument and ends the thread itself.
pub type Body = extern "sysv64" fn(u64) -> !;

/// Words `prepare_kernel_stack` pushes: the six callee-saved registers `switch_context` pops,
/// its return address, then the argument and the body. After `enter_kernel_thread` has popped
/// the last two, RSP is the (16-byte aligned) stack top, as the SysV ABI wants at a call.
const INITIAL_WORDS: usize = 6 + 1 + 2;

/// Prepares the kernel stack whose top (16-byte aligned) is `stack_top` (mapped, writable, at
/// least a page, unused) for a first switch that calls `body(argument)`. Returns the RSP to
/// resume.
pub fn prepare_kernel_stack(stack_top: u64, body: Body, argument: u64) -> u64 {
    assert!(stack_top.is_multiple_of(16));
    let enter = (&raw const __enter_kernel_thread) as u64;
    let words: [u64; INITIAL_WORDS] = [0, 0, 0, 0, 0, 0, enter, argument, body as usize as u64];
    let bottom = stack_top - (INITIAL_WORDS * 8) as u64;
    // SAFETY: the caller passes the top of a fresh kernel stack it mapped writable and nothing
    // else uses yet; the words fit in its first page.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), bottom as *mut u64, INITIAL_WORDS) };
    bottom
}
