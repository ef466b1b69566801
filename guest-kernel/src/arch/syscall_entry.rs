//! SYSCALL entry (SDM Vol. 3A 5.8.8 "Fast System Calls in 64-Bit Mode"): IA32_STAR, LSTAR,
//! FMASK and EFER.SCE; the entry stub switches to the process's kernel stack through a per-CPU
//! block reached with SWAPGS, builds a `syscall::SyscallFrame`, calls the dispatcher with
//! interrupts off, and returns with SYSRETQ.

use super::{cpu, gdt};
use core::arch::global_asm;
use core::cell::UnsafeCell;

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// EFER.SCE: SYSCALL/SYSRET enabled.
const EFER_SCE: u64 = 1 << 0;
/// Flags cleared on SYSCALL: TF, IF, DF, AC (the kernel runs with interrupts off).
const FMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18);

/// The per-CPU block: the kernel stack top of the running process, and a scratch slot.
#[repr(C)]
struct PerCpu {
    kernel_rsp: u64,
    user_rsp: u64,
}
struct PerCpuCell(UnsafeCell<PerCpu>);
// SAFETY: one CPU; written by `set_kernel_stack` with interrupts off and by the entry stub,
// which runs with interrupts off too.
unsafe impl Sync for PerCpuCell {}
static PER_CPU: PerCpuCell = PerCpuCell(UnsafeCell::new(PerCpu {
    kernel_rsp: 0,
    user_rsp: 0,
}));

global_asm!(
    ".section .text",
    ".global syscall_entry",
    "syscall_entry:",
    "    swapgs",
    "    mov gs:[8], rsp",
    "    mov rsp, gs:[0]",
    "    push qword ptr gs:[8]",
    // Back to GS base 0 at once: a context switch inside the call must not carry it along.
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

/// Programs the SYSCALL MSRs.
pub fn init() {
    // User selectors for SYSRET: CS = base + 16, SS = base + 8 (gdt: 0x18 data, 0x20 code).
    let sysret_base = u64::from(gdt::USER_DATA_SELECTOR & !3) - 8;
    let star = (sysret_base << 48) | (u64::from(gdt::KERNEL_CODE_SELECTOR) << 32);
    // STAR's selectors match the GDT (kernel CS/SS 0x08/0x10, user SS/CS 0x1b/0x23); FMASK
    // keeps interrupts off on entry; SCE only enables the SYSCALL instruction.
    // SAFETY: these MSRs exist on every x86-64 CPU; STAR and FMASK are as described above,
    // LSTAR is the entry stub above, KERNEL_GS_BASE the static per-CPU block its SWAPGS reaches.
    unsafe {
        cpu::wrmsr(IA32_STAR, star);
        cpu::wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        cpu::wrmsr(IA32_FMASK, FMASK);
        cpu::wrmsr(IA32_KERNEL_GS_BASE, PER_CPU.0.get() as u64);
        let efer = cpu::rdmsr(cpu::IA32_EFER);
        cpu::wrmsr(cpu::IA32_EFER, efer | EFER_SCE);
    }
}

/// Makes `top` the kernel stack for SYSCALL and for interrupts from ring 3 (TSS.RSP0).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one CPU with interrupts off (the scheduler's caller): no entry stub runs now.
    unsafe { (*PER_CPU.0.get()).kernel_rsp = top };
    gdt::set_rsp0(top);
}
