//! The native jump: load the boot GDT, segments, page tables and stack, then enter the kernel.

use core::arch::asm;

use rampart_boot_info::{GDT_SELECTOR_CODE, GDT_SELECTOR_DATA};
use rampart_hypervisor::GuestEntry;

/// IA32_EFER (SDM Vol. 4, Table 2-2).
const IA32_EFER: u32 = 0xC000_0080;
/// IA32_EFER.NXE, bit 11.
const EFER_NXE: u32 = 1 << 11;
/// CR0.WP, bit 16 (SDM Vol. 3A 2.5).
const CR0_WP: u64 = 1 << 16;

/// The operand of LGDT: 16-bit limit, 64-bit base.
#[repr(C, packed)]
struct DescriptorTablePointer {
    limit: u16,
    base: u64,
}

/// Switches to the guest entry state of the contract and jumps to `entry.rip` (SysV: the
/// BootInfo address in RDI).
///
/// # Safety
/// Boot services must have exited. `entry` must describe a GDT with a 64-bit code segment at
/// `GDT_SELECTOR_CODE` and data at `GDT_SELECTOR_DATA`, page tables at `entry.cr3` that
/// identity-map the code and stack currently in use (this function keeps running on them for a
/// few instructions), a stack at `entry.rsp`, and a kernel entry at `entry.rip`.
pub unsafe fn enter(entry: &GuestEntry) -> ! {
    let gdtr = DescriptorTablePointer {
        limit: entry.gdt_limit,
        base: entry.gdt_base,
    };
    // Registers: R8 = &gdtr, R9 = CR3, R10 = stack, R11 = entry, RDI = BootInfo. RDI is set
    // explicitly because the kernel entry is SysV while this target is MS x64. RAX, RCX and RDX
    // are free scratch (nothing follows). The boot tables set no XD bits, so loading CR3 before
    // EFER.NXE is set is fine.
    // SAFETY: the contract (boot services exited; GDT, page tables, stack, entry ready) holds.
    // LGDT reads `gdtr` off the old stack before RSP moves; the new CR3 identity-maps this code
    // and stack; RETFQ reloads CS to 64-bit code; RSP is switched last, right before the jump.
    unsafe {
        asm!(
            "cli",
            "cld",
            "lgdt [r8]",
            "mov cr3, r9",
            "mov rax, cr0",
            "or rax, {cr0_wp}",
            "mov cr0, rax",
            "mov ecx, {efer}",
            "rdmsr",
            "or eax, {nxe}",
            "wrmsr",
            "mov eax, {data}",
            "mov ds, ax",
            "mov es, ax",
            "mov ss, ax",
            "mov fs, ax",
            "mov gs, ax",
            "push {code}",
            "lea rax, [rip + 2f]",
            "push rax",
            "retfq",
            "2:",
            "mov rsp, r10",
            "xor ebp, ebp",
            "jmp r11",
            in("r8") &gdtr,
            in("r9") entry.cr3,
            in("r10") entry.rsp,
            in("r11") entry.rip,
            data = const GDT_SELECTOR_DATA,
            code = const GDT_SELECTOR_CODE,
            cr0_wp = const CR0_WP,
            efer = const IA32_EFER,
            nxe = const EFER_NXE,
            in("rdi") entry.boot_info,
            options(noreturn),
        );
    }
}
