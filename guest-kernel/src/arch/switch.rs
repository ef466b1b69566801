//! Context switches between kernel stacks, and the first entry of a process into ring 3.
//!
//! A suspended context is its kernel RSP; the stack holds RBX, RBP, R12-R15 and the return
//! address (System V callee-saved state). A new process's stack is prepared so that the first
//! switch to it "returns" into `enter_user`, which pops RDI and RSI and leaves through the
//! interrupt exit path (`arch::interrupts`) with the IRETQ frame.

use super::gdt;
use core::arch::global_asm;
use core::sync::atomic::AtomicBool;

/// RFLAGS.IF, plus the always-one bit 1.
const USER_RFLAGS: u64 = (1 << 9) | (1 << 1);

global_asm!(
    ".section .text",
    ".global switch_context",
    // rdi = where to save the current RSP, rsi = the RSP to resume, rdx = the byte to clear
    // once off the old stack (its process's `on_cpu`: another CPU may resume it from then on).
    "switch_context:",
    "    push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "    mov [rdi], rsp",
    "    mov rsp, rsi",
    "    mov byte ptr [rdx], 0",
    "    pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "    ret",
    // Builds the frame `arch::interrupts` returns through (15 GPRs, all zero but RDI and RSI,
    // then vector and error code) on top of the IRETQ frame, and leaves by its exit path, which
    // with KPTI switches to the user-mode root.
    "enter_user:",
    "    pop rdi",
    "    pop rsi",
    "    push 0",
    "push 0",
    "    push 0",
    "push 0",
    "push 0",
    "push 0",
    "push rsi",
    "push rdi",
    "push 0",
    "    push 0",
    "push 0",
    "push 0",
    "push 0",
    "push 0",
    "push 0",
    "push 0",
    "push 0",
    "    jmp __interrupt_exit",
    ".global __enter_user",
    ".set __enter_user, enter_user",
);

extern "C" {
    fn switch_context(save: *mut u64, resume: u64, leaving: *const AtomicBool);
    static __enter_user: u8;
}

/// Words `prepare_user_stack` pushes.
const INITIAL_WORDS: usize = 6 + 1 + 2 + 5;

/// Prepares the kernel stack whose top is `stack_top` (mapped, writable, at least a page) for a
/// first switch that enters ring 3 at `rip` with `rsp`, RDI = `rdi`, RSI = `rsi`, IF=1.
/// Returns the RSP to resume.
pub fn prepare_user_stack(stack_top: u64, rip: u64, rsp: u64, rdi: u64, rsi: u64) -> u64 {
    let enter = (&raw const __enter_user) as u64;
    let words: [u64; INITIAL_WORDS] = [
        0,
        0,
        0,
        0,
        0,
        0, // r15 r14 r13 r12 rbp rbx
        enter,
        rdi,
        rsi,
        rip,
        u64::from(gdt::USER_CODE_SELECTOR),
        USER_RFLAGS,
        rsp,
        u64::from(gdt::USER_DATA_SELECTOR),
    ];
    let bottom = stack_top - (INITIAL_WORDS * 8) as u64;
    // SAFETY: the caller passes the top of a fresh kernel stack it mapped writable and nothing
    // else uses yet; the words fit in its first page.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), bottom as *mut u64, INITIAL_WORDS) };
    bottom
}

/// Saves the current context to `*save`, resumes the one at `resume`, and clears `*leaving`
/// (a plain store, ordered after the save on x86) once off the old stack.
///
/// # Safety
/// Interrupts must be off; `save` and `leaving` must stay valid until the store (then until the
/// context is resumed); `resume` must be an RSP saved by this function (or made by
/// `prepare_user_stack`) on a stack mapped in the loaded address space, not in use by anything
/// else.
pub unsafe fn switch(save: *mut u64, resume: u64, leaving: *const AtomicBool) {
    // SAFETY: delegated to the caller.
    unsafe { switch_context(save, resume, leaving) };
}
