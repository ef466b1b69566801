//! VMLAUNCH and the VM-exit entry point (host RIP).
//!
//! At VM exit the CPU loads host RSP/RIP from the VMCS (SDM Vol. 3C 28.5 "Loading Host State")
//! but saves no guest GPRs: the stub pushes them into a [`GuestRegisters`] on the exit stack,
//! saves the guest's x87/SSE state (the hypervisor is compiled for a target that uses SSE), calls
//! the Rust handler, restores both and executes VMRESUME.

use crate::vcpu::GuestRegisters;
use core::arch::naked_asm;

/// `push_gprs!()` pushes the 15 general-purpose registers so that RSP then points at a
/// [`GuestRegisters`]; `pop_gprs!()` pops one at RSP back into them. Both expand to assembly
/// text, one instruction per register, in the struct's field order (RAX at the lowest address).
macro_rules! gprs {
    ($op:literal: $($register:ident),*) => {
        concat!($($op, " ", stringify!($register), "\n"),*)
    };
}

macro_rules! push_gprs {
    () => {
        $crate::arch::vm_entry::gprs!("push": r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax)
    };
}

macro_rules! pop_gprs {
    () => {
        $crate::arch::vm_entry::gprs!("pop": rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15)
    };
}

pub(super) use {gprs, pop_gprs, push_gprs};

/// Loads the guest GPRs from `regs` and executes VMLAUNCH. Returns only by failing, into
/// the hypervisor's `Hypervisor::entry_failed` ([`super::entry_points`]).
///
/// # Safety
/// A fully initialised current VMCS whose host RIP is [`vm_exit_entry`] and host RSP the top
/// of a 16-byte aligned, hypervisor-owned stack.
#[unsafe(naked)]
pub unsafe extern "sysv64" fn vm_launch(regs: *const GuestRegisters) -> ! {
    naked_asm!(
        // Copies `regs` to this stack and pops it from there (`regs` may be a static, and the
        // failure path below still needs this stack). The ABI guarantees RFLAGS.DF = 0.
        "mov rsi, rdi",
        "sub rsp, {size}",
        "mov rdi, rsp",
        "mov ecx, {qwords}",
        "rep movsq",
        pop_gprs!(),
        "vmlaunch",
        // VMfail: RFLAGS.CF (invalid VMCS pointer) or ZF (error number in the VMCS).
        "pushfq",
        "pop rdi",
        "and rsp, -16",
        "call {failed}",
        "ud2",
        failed = sym launch_failed,
        size = const core::mem::size_of::<GuestRegisters>(),
        qwords = const core::mem::size_of::<GuestRegisters>() / 8,
    )
}

extern "sysv64" fn launch_failed(rflags: u64) -> ! {
    // SAFETY: `rampart_entry_failed` is the hypervisor's failure report, bound by
    // `entry_points::bind!`; it has no precondition.
    unsafe { super::entry_points::rampart_entry_failed(true, rflags) }
}

extern "sysv64" fn resume_failed(rflags: u64) -> ! {
    // SAFETY: as in `launch_failed`.
    unsafe { super::entry_points::rampart_entry_failed(false, rflags) }
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
        // `rampart_vm_exit`: defined by `entry_points::bind!`, a direct call.
        "call rampart_vm_exit",
        "fxrstor64 [rsp]",
        "add rsp, 520",
        pop_gprs!(),
        "vmresume",
        "pushfq",
        "pop rdi",
        "and rsp, -16",
        "call {failed}",
        "ud2",
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
