//! Starting the other CPUs (application processors, APs).
//!
//! Both ways end in [`entry64_address`], the shared 64-bit AP entry, with RSP on the AP's
//! idle stack and RDI = its local APIC ID:
//! - natively, INIT-SIPI-SIPI (SDM Vol. 3A 9.4.4.1 "Typical BSP Initialization Sequence")
//!   starts the AP in real mode at the trampoline the kernel copied to the BootInfo's
//!   `ap_trampoline` page; the trampoline goes to protected mode, then long mode on page tables
//!   that identity-map that page and share the kernel's upper half, and jumps to the entry;
//! - under Rampart, the `StartVcpu` hypercall starts the vCPU at the entry directly.

use super::{cpu, lapic};
use core::arch::global_asm;

/// Where the trampoline's parameters sit in its page (the code stays below).
const DATA: usize = 0xf00;
/// Parameter offsets from [`DATA`] (each a u64 unless noted).
const CR3: usize = DATA;
const CR4: usize = DATA + 0x08;
const EFER: usize = DATA + 0x10;
const CR0: usize = DATA + 0x18;
const RSP: usize = DATA + 0x20;
const ENTRY: usize = DATA + 0x28;
const APIC_ID: usize = DATA + 0x30;
/// Far pointer (u32 offset, u16 selector) to the protected-mode code.
const PROTECTED_JUMP: usize = DATA + 0x38;
/// LGDT operand (u16 limit, u32 base) of the trampoline's own GDT.
const GDTR: usize = DATA + 0x40;
/// Far pointer (u32 offset, u16 selector) to the 64-bit code.
const LONG_JUMP: usize = DATA + 0x48;
/// Selectors of the trampoline's GDT.
const CODE32: u16 = 0x08;
const CODE64: u16 = 0x18;
/// EFER.LME: IA-32e mode once paging is on.
const EFER_LME: u64 = 1 << 8;
/// CR4.PCIDE may only be set in 64-bit mode; the trampoline leaves it to the AP entry.
const CR4_PCIDE: u64 = 1 << 17;
/// Size of the trampoline page.
pub const TRAMPOLINE_SIZE: usize = 4096;

// The trampoline, copied to the `ap_trampoline` page P by `install_trampoline`: the AP starts
// in real mode at P:0 with CS base P. EBX holds P throughout, to reach the parameters (filled by
// `install_trampoline`: absolute addresses included, so the code needs no relocation). It sits
// in read-only data: the kernel only copies it, never runs it from here.
global_asm!(
    ".section .rodata.ap_trampoline, \"a\"",
    ".balign 16",
    ".global ap_trampoline_start",
    "ap_trampoline_start:",
    ".code16",
    "    cli",
    "    cld",
    "    xorl %ebx, %ebx",
    "    movw %cs, %bx",
    "    movw %bx, %ds",
    "    shll $4, %ebx",
    "    lgdtl {gdtr}",
    "    movl %cr0, %eax",
    "    orl $1, %eax",
    "    movl %eax, %cr0",
    "    ljmpl *{protected_jump}",
    ".code32",
    ".global ap_trampoline_protected",
    "ap_trampoline_protected:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movl {cr4}(%ebx), %eax",
    "    movl %eax, %cr4",
    "    movl {cr3}(%ebx), %eax",
    "    movl %eax, %cr3",
    "    movl $0xc0000080, %ecx",
    "    movl {efer}(%ebx), %eax",
    "    movl {efer}+4(%ebx), %edx",
    "    wrmsr",
    "    movl {cr0}(%ebx), %eax",
    "    movl %eax, %cr0",
    "    ljmpl *{long_jump}(%ebx)",
    ".code64",
    ".global ap_trampoline_long",
    "ap_trampoline_long:",
    "    movq {rsp}(%rbx), %rsp",
    "    movl {apic_id}(%rbx), %edi",
    "    movq {entry}(%rbx), %rax",
    "    jmp *%rax",
    ".balign 8",
    ".global ap_trampoline_gdt",
    "ap_trampoline_gdt:",
    "    .quad 0",
    "    .quad 0x00cf9a000000ffff", // 0x08: 32-bit code
    "    .quad 0x00cf92000000ffff", // 0x10: data
    "    .quad 0x00af9a000000ffff", // 0x18: 64-bit code
    ".global ap_trampoline_end",
    "ap_trampoline_end:",
    ".previous",
    gdtr = const GDTR,
    protected_jump = const PROTECTED_JUMP,
    cr4 = const CR4,
    cr3 = const CR3,
    efer = const EFER,
    cr0 = const CR0,
    long_jump = const LONG_JUMP,
    rsp = const RSP,
    apic_id = const APIC_ID,
    entry = const ENTRY,
    options(att_syntax)
);

// The 64-bit AP entry (trampoline and StartVcpu alike): interrupts off, no GDT/IDT/TR of the
// kernel yet, RSP = the AP's idle stack top, RDI = its APIC ID. It continues in
// `Kernel::ap_main` through `rampart_ap_entry` (defined by `arch::kernel::bind!`).
global_asm!(
    ".section .text",
    ".global ap_entry64",
    "ap_entry64:",
    "    cli",
    "    cld",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call rampart_ap_entry",
    "    ud2",
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_protected: u8;
    static ap_trampoline_long: u8;
    static ap_trampoline_gdt: u8;
    static ap_trampoline_end: u8;
    fn ap_entry64();
}

/// The shared 64-bit AP entry (kernel text: StartVcpu requires it).
pub fn entry64_address() -> u64 {
    ap_entry64 as *const () as u64
}

/// What the trampoline loads before it jumps to the 64-bit entry.
pub struct TrampolineParameters {
    /// Page tables (below 4 GiB) identity-mapping the trampoline page and holding the kernel.
    pub cr3: u64,
    pub rsp: u64,
    pub apic_id: u32,
}

/// Offset of a trampoline symbol from its start.
fn offset_of(symbol: *const u8) -> usize {
    symbol as usize - (&raw const ap_trampoline_start) as usize
}

/// Copies the trampoline to physical page `page` (through the direct map) and fills its
/// parameters: CR0/CR4/EFER as this CPU has them (CR4.PCIDE left out), `parameters`, and the
/// 64-bit entry. Panics if `page` is not a page-aligned address below 1 MiB or CR3 is above
/// 4 GiB (the trampoline loads it in 32-bit mode).
pub fn install_trampoline(page: u64, parameters: &TrampolineParameters) {
    assert!(page.is_multiple_of(TRAMPOLINE_SIZE as u64) && page < 1 << 20);
    assert!(parameters.cr3 < 1 << 32, "trampoline CR3 above 4 GiB");
    let length = offset_of(&raw const ap_trampoline_end);
    assert!(length <= DATA, "trampoline code overlaps its parameters");
    let base = crate::mm::layout::phys_to_virt(page) as *mut u8;
    // SAFETY: the trampoline blob is `length` bytes of read-only data in the kernel image.
    let code = unsafe { core::slice::from_raw_parts(&raw const ap_trampoline_start, length) };
    let page32 = page as u32;
    let far = |target: u32, selector: u16| {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&target.to_le_bytes());
        bytes[4..6].copy_from_slice(&selector.to_le_bytes());
        bytes
    };
    let gdt_base = page32 + offset_of(&raw const ap_trampoline_gdt) as u32;
    let mut gdtr = [0u8; 8];
    gdtr[..2].copy_from_slice(&31u16.to_le_bytes());
    gdtr[2..6].copy_from_slice(&gdt_base.to_le_bytes());
    // SAFETY: reading EFER: it exists on every CPU in long mode.
    let efer = unsafe { cpu::rdmsr(cpu::IA32_EFER) } & cpu::EFER_NXE | EFER_LME;
    let words: [(usize, [u8; 8]); 10] = [
        (CR3, parameters.cr3.to_le_bytes()),
        (CR4, (cpu::read_cr4() & !CR4_PCIDE).to_le_bytes()),
        (EFER, efer.to_le_bytes()),
        (CR0, cpu::read_cr0().to_le_bytes()),
        (RSP, parameters.rsp.to_le_bytes()),
        (ENTRY, entry64_address().to_le_bytes()),
        (APIC_ID, u64::from(parameters.apic_id).to_le_bytes()),
        (
            PROTECTED_JUMP,
            far(
                page32 + offset_of(&raw const ap_trampoline_protected) as u32,
                CODE32,
            ),
        ),
        (GDTR, gdtr),
        (
            LONG_JUMP,
            far(
                page32 + offset_of(&raw const ap_trampoline_long) as u32,
                CODE64,
            ),
        ),
    ];
    // SAFETY: `page` is the BootInfo's reserved trampoline page below 1 MiB (checked), RAM in
    // the direct map that nothing else uses; the copies stay inside its 4 KiB (the code is at
    // most DATA bytes, checked, and every parameter lies below DATA + 0x50).
    unsafe {
        core::ptr::copy_nonoverlapping(code.as_ptr(), base, length);
        for (offset, bytes) in words {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(offset), bytes.len());
        }
    }
}

/// Sends INIT, waits, then start-up twice (SDM Vol. 3A 9.4.4.1) to `apic_id`, starting it at
/// the trampoline page `page`; `wait_ms` waits at least the given milliseconds. Returns false
/// if an IPI could not be sent.
///
/// # Safety
/// `apic_id` must be a CPU the kernel has not started (INIT resets it), and `page` hold the
/// trampoline with its parameters (`install_trampoline`).
pub unsafe fn wake(apic_id: u32, page: u64, wait_ms: impl Fn(u64)) -> bool {
    let vector = (page >> 12) as u8;
    // SAFETY: per the caller, the destination is an AP the kernel has not started, so
    // resetting it and starting it at the trampoline takes nothing from anyone.
    unsafe {
        let init = lapic::send_ipi(apic_id, lapic::command::INIT);
        wait_ms(10);
        let first = lapic::send_ipi(apic_id, lapic::command::startup(vector));
        wait_ms(1);
        let second = lapic::send_ipi(apic_id, lapic::command::startup(vector));
        init && first && second
    }
}
