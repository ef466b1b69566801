//! VMLAUNCH and the VM-exit entry point (host RIP).
//!
//! At VM exit the CPU loads host RSP/RIP from the VMCS (SDM Vol. 3C 28.5 "Loading Host State")
//! but saves no guest GPRs: the stub pushes them into a [`GuestRegisters`] on the exit stack,
//! saves the guest's x87/SSE state (the hypervisor is compiled for a target that uses SSE), calls
//! the Rust handler, restores both and executes VMRESUME.

use crate::vcpu::GuestRegisters;
use core::arch::naked_asm;

/// Pushes the 15 general-purpose registers so that RSP then points at a [`GuestRegisters`].
macro_rules! push_gprs {
    () => {
        concat!(
            "push r15\n",
            "push r14\n",
            "push r13\n",
            "push r12\n",
            "push r11\n",
            "push r10\n",
            "push r9\n",
            "push r8\n",
            "push rbp\n",
            "push rdi\n",
            "push rsi\n",
            "push rdx\n",
            "push rcx\n",
            "push rbx\n",
            "push rax\n",
        )
    };
}

/// Pops a [`GuestRegisters`] at RSP into the 15 general-purpose registers.
macro_rules! pop_gprs {
    () => {
        concat!(
            "pop rax\n",
            "pop rbx\n",
            "pop rcx\n",
            "pop rdx\n",
            "pop rsi\n",
            "pop rdi\n",
            "pop rbp\n",
            "pop r8\n",
            "pop r9\n",
            "pop r10\n",
            "pop r11\n",
            "pop r12\n",
            "pop r13\n",
            "pop r14\n",
            "pop r15\n",
        )
    };
}

pub(super) use {pop_gprs, push_gprs};

/// Loads the guest GPRs from `regs` and executes VMLAUNCH. Returns only by failing, into
/// [`crate::exits::stop::entry_failed`].
///
/// # Safety
/// A fully initialised current VMCS whose host RIP is [`vm_exit_entry`] and host RSP the top
/// of a 16-byte aligned, hypervisor-owned stack.
#[unsafe(naked)]
pub unsafe extern "sysv64" fn vm_launch(regs: *const GuestRegisters) -> ! {
    naked_asm!(
        "mov rax, [rdi + 0x00]",
        "mov rbx, [rdi + 0x08]",
        "mov rcx, [rdi + 0x10]",
        "mov rdx, [rdi + 0x18]",
        "mov rsi, [rdi + 0x20]",
        "mov rbp, [rdi + 0x30]",
        "mov r8,  [rdi + 0x38]",
        "mov r9,  [rdi + 0x40]",
        "mov r10, [rdi + 0x48]",
        "mov r11, [rdi + 0x50]",
        "mov r12, [rdi + 0x58]",
        "mov r13, [rdi + 0x60]",
        "mov r14, [rdi + 0x68]",
        "mov r15, [rdi + 0x70]",
        "mov rdi, [rdi + 0x28]",
        "vmlaunch",
        // VMfail: RFLAGS.CF (invalid VMCS pointer) or ZF (error number in the VMCS).
        "pushfq",
        "pop rdi",
        "and rsp, -16",
        "call {failed}",
        "ud2",
        failed = sym launch_failed,
    )
}

extern "sysv64" fn launch_failed(rflags: u64) -> ! {
    crate::exits::stop::entry_failed("VMLAUNCH", rflags)
}

extern "sysv64" fn resume_failed(rflags: u64) -> ! {
    crate::exits::stop::entry_failed("VMRESUME", rflags)
}

/// Host RIP: runs on every VM exit with RSP = the top of the exit stack (16-byte aligned).
///
/// Stack after the pushes: 15 GPRs (120 bytes), then 520 bytes (512-byte FXSAVE area plus 8
/// bytes to keep both the area and the call 16-byte aligned).
#[unsafe(naked)]
pub extern "sysv64" fn vm_exit_entry() {
    naked_asm!(
        push_gprs!(),
        "mov rdi, rsp",
        "sub rsp, 520",
        "fxsave64 [rsp]",
        "call {handler}",
        "fxrstor64 [rsp]",
        "add rsp, 520",
        pop_gprs!(),
        "vmresume",
        "pushfq",
        "pop rdi",
        "and rsp, -16",
        "call {failed}",
        "ud2",
        handler = sym crate::exits::handle_exit,
        failed = sym resume_failed,
    )
}

/// Switches to `stack_top` and calls `continuation(argument)`, never returning.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned top of a hypervisor-owned stack nothing else uses.
#[unsafe(naked)]
pub unsafe extern "sysv64" fn switch_stack(
    argument: u64,
    stack_top: u64,
    continuation: extern "sysv64" fn(u64) -> !,
) -> ! {
    naked_asm!("mov rsp, rsi", "xor ebp, ebp", "call rdx", "ud2")
}
