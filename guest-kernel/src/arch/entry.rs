//! `_start`: the first kernel instruction under the entry contract of `rampart_boot_info`, and
//! the kernel's stacks (boot stack and IST stacks, each above an unmapped guard page). It
//! continues in `Kernel::start` (`arch::kernel`).

use super::kernel::Kernel;
use core::arch::global_asm;
use rampart_boot_info::BootInfo;

/// Bytes of the kernel (boot) stack.
pub const KERNEL_STACK_SIZE: usize = 64 * 1024;
/// Bytes of each IST stack (double fault, NMI, machine check).
pub const IST_STACK_SIZE: usize = 16 * 1024;

// At entry: 64-bit mode, CPL0, IF=0, identity-mapped paging, RDI = BootInfo address, RSP on the
// firmware's boot stack. Zero .bss ourselves (the ELF loader should have, but the kernel's
// statics must not depend on it), switch to the kernel stack, and call `rampart_kernel_entry`
// (defined by `arch::kernel::bind!`, which continues in [`enter`]) with RDI unchanged. Stack alignment: RSP is 16-aligned before the call, as the SysV ABI requires.
global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    cli",
    "    cld",
    "    mov r12, rdi",
    "    lea rdi, [rip + __bss_start]",
    "    lea rcx, [rip + __bss_end]",
    "    sub rcx, rdi",
    "    xor eax, eax",
    "    rep stosb",
    "    lea rsp, [rip + __kernel_stack_top]",
    "    xor ebp, ebp",
    "    mov rdi, r12",
    "    call rampart_kernel_entry",
    "    ud2",
    ".size _start, . - _start",
    "",
    // Each stack: a guard page (left unmapped by `arch::paging`), then the stack itself.
    ".macro STACK name, size",
    "    .balign 4096",
    "    .global __\\name\\()_guard",
    "    __\\name\\()_guard: .skip 4096",
    "    .skip \\size",
    "    .global __\\name\\()_top",
    "    __\\name\\()_top:",
    ".endm",
    ".section .bss.stacks, \"aw\", @nobits",
    "STACK kernel_stack, {kernel_stack_size}",
    "STACK double_fault_stack, {ist_stack_size}",
    "STACK nmi_stack, {ist_stack_size}",
    "STACK machine_check_stack, {ist_stack_size}",
    ".previous",
    kernel_stack_size = const KERNEL_STACK_SIZE,
    ist_stack_size = const IST_STACK_SIZE,
);

extern "C" {
    static __kernel_stack_guard: u8;
    static __double_fault_stack_guard: u8;
    static __double_fault_stack_top: u8;
    static __nmi_stack_guard: u8;
    static __nmi_stack_top: u8;
    static __machine_check_stack_guard: u8;
    static __machine_check_stack_top: u8;
}

/// The guard pages below every stack (unmapped, so an overflow faults instead of corrupting).
pub fn stack_guard_pages() -> [u64; 4] {
    [
        (&raw const __kernel_stack_guard) as u64,
        (&raw const __double_fault_stack_guard) as u64,
        (&raw const __nmi_stack_guard) as u64,
        (&raw const __machine_check_stack_guard) as u64,
    ]
}

/// Tops of the IST stacks: (double fault, NMI, machine check).
pub fn ist_stack_tops() -> (u64, u64, u64) {
    (
        (&raw const __double_fault_stack_top) as u64,
        (&raw const __nmi_stack_top) as u64,
        (&raw const __machine_check_stack_top) as u64,
    )
}

/// Called once, through `rampart_kernel_entry`, by `_start` on the kernel stack with RDI from
/// the firmware: hands RDI, and the BootInfo there if the address is usable, to `K::start`.
///
/// # Safety
/// `boot_info_address` must be RDI as the firmware set it under the entry contract.
pub unsafe fn enter<K: Kernel>(boot_info_address: u64) -> ! {
    let aligned = boot_info_address.is_multiple_of(core::mem::align_of::<BootInfo>() as u64);
    let boot_info = if boot_info_address != 0 && aligned {
        // The caller validates magic and version before trusting any other field; BootInfo is
        // integers only, so any bytes there are a valid value.
        // SAFETY: per the entry contract (rampart_boot_info) RDI is the identity-mapped address
        // of a BootInfo left untouched until `Kernel::start` has copied it; non-null and aligned.
        Some(unsafe { &*(boot_info_address as *const BootInfo) })
    } else {
        None
    };
    K::start(boot_info_address, boot_info)
}
