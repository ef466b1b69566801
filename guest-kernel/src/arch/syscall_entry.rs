//! SYSCALL entry (SDM Vol. 3A 5.8.8 "Fast System Calls in 64-Bit Mode"): IA32_STAR, LSTAR,
//! FMASK and EFER.SCE; the entry stub switches to the process's kernel stack through this CPU's
//! block (`arch::percpu`) reached with SWAPGS, builds a `syscall::SyscallFrame`, calls the dispatcher with
//! interrupts off, and returns with SYSRETQ.

use super::{cpu, gdt};
use core::arch::global_asm;

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
/// EFER.SCE: SYSCALL/SYSRET enabled.
const EFER_SCE: u64 = 1 << 0;
/// Flags cleared on SYSCALL: TF, IF, DF, AC (the kernel runs with interrupts off).
const FMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18);

global_asm!(
    ".section .text",
    ".global syscall_entry",
    "syscall_entry:",
    "    swapgs",
    "    mov gs:[8], rsp",
    "    mov rsp, gs:[0]",
    "    push qword ptr gs:[8]",
    // Back to GS base 0 at once (the kernel convention, `arch::percpu`): the call may switch
    // to another process, and this one may resume on another CPU.
    "    swapgs",
    "    push r11", "push rcx",
    "    push r9", "push r8", "push r10", "push rdx", "push rsi", "push rdi", "push rax",
    "    push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
    "    cld",
    "    mov rdi, rsp",
    "    call {dispatch}",
    "    pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "    pop rax", "pop rdi", "pop rsi", "pop rdx", "pop r10", "pop r8", "pop r9",
    "    pop rcx", "pop r11",
    "    pop rsp",
    "    sysretq",
    dispatch = sym crate::syscall::dispatch,
);

extern "C" {
    fn syscall_entry();
}

/// Programs this CPU's SYSCALL MSRs (after `percpu::init`, which points
/// IA32_KERNEL_GS_BASE at the block the stub uses).
pub fn init() {
    // User selectors for SYSRET: CS = base + 16, SS = base + 8 (gdt: 0x18 data, 0x20 code).
    let sysret_base = u64::from(gdt::USER_DATA_SELECTOR & !3) - 8;
    let star = (sysret_base << 48) | (u64::from(gdt::KERNEL_CODE_SELECTOR) << 32);
    // STAR's selectors match the GDT (kernel CS/SS 0x08/0x10, user SS/CS 0x1b/0x23); FMASK
    // keeps interrupts off on entry; SCE only enables the SYSCALL instruction.
    // SAFETY: these MSRs exist on every x86-64 CPU; STAR and FMASK are as described above,
    // LSTAR is the entry stub above.
    unsafe {
        cpu::wrmsr(IA32_STAR, star);
        cpu::wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        cpu::wrmsr(IA32_FMASK, FMASK);
        let efer = cpu::rdmsr(cpu::IA32_EFER);
        cpu::wrmsr(cpu::IA32_EFER, efer | EFER_SCE);
    }
}

/// Makes `top` this CPU's kernel stack for SYSCALL and for interrupts from ring 3 (TSS.RSP0).
pub fn set_kernel_stack(top: u64) {
    super::percpu::set_kernel_rsp(top);
    gdt::set_rsp0(top);
}
