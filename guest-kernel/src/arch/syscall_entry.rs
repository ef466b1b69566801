//! SYSCALL entry (SDM Vol. 3A 5.8.8 "Fast System Calls in 64-Bit Mode"): IA32_STAR, LSTAR,
//! FMASK and EFER.SCE; the entry stub switches to the process's kernel stack through this CPU's
//! block (`arch::percpu`) reached with SWAPGS, builds a [`SyscallFrame`], calls the kernel's
//! dispatcher (`Kernel::syscall`, `arch::kernel`) with interrupts off, and returns with SYSRETQ.

use super::{cpu, gdt, percpu};
use core::arch::global_asm;

/// Saved user registers, lowest address first, as the stub below pushes them.
#[repr(C)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    /// The number on entry, the result on return.
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub r10: u64,
    pub r8: u64,
    pub r9: u64,
    /// User RIP (SYSCALL saved it in RCX).
    pub rcx: u64,
    /// User RFLAGS (SYSCALL saved it in R11).
    pub r11: u64,
    pub user_rsp: u64,
}

/// The stub pushes exactly this many words; keep both in step.
const _: () = assert!(core::mem::size_of::<SyscallFrame>() == 16 * 8);

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
/// EFER.SCE: SYSCALL/SYSRET enabled.
const EFER_SCE: u64 = 1 << 0;
/// Flags cleared on SYSCALL: TF, IF, DF, AC (the kernel runs with interrupts off).
const FMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18);

// With `kpti=on` (`arch::kpti`) the stub runs its first instructions on the user-mode root, which
// maps only the entry text and data: it switches to the kernel-mode root (`gs:[24]`) right after
// SWAPGS, and back to the user-mode root (`gs:[32]`) right before SYSRETQ, using RSP as the
// scratch register (interrupts are off throughout: FMASK clears IF). After each user-mode load
// it ORs `gs:[40]` (NO_FLUSH with PCIDs, else 0) into the stored value, so only the first return
// after an address-space switch flushes the user-mode PCID.
global_asm!(
    ".section .text.kpti, \"ax\"",
    ".global syscall_entry",
    "syscall_entry:",
    "    swapgs",
    "    mov gs:[{user_rsp}], rsp",
    "    cmp byte ptr [rip + {kpti_on}], 0",
    "    je 2f",
    "    mov rsp, gs:[{kernel_cr3}]",
    "    mov cr3, rsp",
    "2:",
    "    mov rsp, gs:[{kernel_rsp}]",
    "    push qword ptr gs:[{user_rsp}]",
    // Back to GS base 0 at once (the kernel convention, `arch::percpu`): the call may switch
    // to another process, and this one may resume on another CPU.
    "    swapgs",
    "    push r11", "push rcx",
    "    push r9", "push r8", "push r10", "push rdx", "push rsi", "push rdi", "push rax",
    "    push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
    "    cld",
    "    mov rdi, rsp",
    // `rampart_syscall_dispatch`: defined by `arch::kernel::bind!`, a direct call.
    "    call rampart_syscall_dispatch",
    "    pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "    pop rax", "pop rdi", "pop rsi", "pop rdx", "pop r10", "pop r8", "pop r9",
    "    pop rcx", "pop r11",
    "    cmp byte ptr [rip + {kpti_on}], 0",
    "    jne 3f",
    "    pop rsp",
    "    sysretq",
    // KPTI: this CPU's block holds the user-mode CR3 of the process now running here.
    "3:",
    "    swapgs",
    "    pop qword ptr gs:[{user_rsp}]",
    "    mov rsp, gs:[{user_cr3}]",
    "    mov cr3, rsp",
    "    mov rsp, gs:[{no_flush}]",
    "    or gs:[{user_cr3}], rsp",
    "    mov rsp, gs:[{user_rsp}]",
    "    swapgs",
    "    sysretq",
    ".previous",
    kpti_on = sym super::kpti::KPTI_ON,
    kernel_rsp = const percpu::KERNEL_RSP_OFFSET,
    user_rsp = const percpu::USER_RSP_OFFSET,
    kernel_cr3 = const percpu::KERNEL_CR3_OFFSET,
    user_cr3 = const percpu::USER_CR3_OFFSET,
    no_flush = const percpu::NO_FLUSH_OFFSET,
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

/// Makes `top` this CPU's kernel stack for SYSCALL and for interrupts from ring 3 (TSS.RSP0
/// stays on the CPU's entry stack and the stubs move the frame to `top`: the TSS does not
/// change, and the hypervisor keeps it read-only).
pub fn set_kernel_stack(top: u64) {
    percpu::set_kernel_rsp(top);
}
