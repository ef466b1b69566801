//! The APs' first instructions: real mode -> protected mode -> long mode on the hypervisor's
//! own page tables (SDM Vol. 3A 10.8.5 "Initializing IA-32e Mode"), then a jump to Rust.
//!
//! A SIPI starts an AP in real mode at CS:IP = (vector << 8):0 (SDM Vol. 3A 8.4.4.1), so the
//! code is copied to a page below 1 MiB and written position-independently: real-mode operands
//! are offsets in that page, later ones add the page's linear base (kept in EBX/RBX).

use core::arch::global_asm;

global_asm!(
    ".balign 16",
    ".global rampart_ap_trampoline_start",
    "rampart_ap_trampoline_start:",
    ".code16",
    "    cli",
    "    cld",
    "    movw %cs, %ax",
    "    movw %ax, %ds",
    "    xorl %ebx, %ebx",
    "    movw %ax, %bx",
    "    shll $4, %ebx",
    "    leal (2f - rampart_ap_trampoline_start)(%ebx), %eax",
    "    movl %eax, (5f - rampart_ap_trampoline_start + 2)",
    "    leal (3f - rampart_ap_trampoline_start)(%ebx), %eax",
    "    movl %eax, (6f - rampart_ap_trampoline_start)",
    "    leal (4f - rampart_ap_trampoline_start)(%ebx), %eax",
    "    movl %eax, (7f - rampart_ap_trampoline_start)",
    "    lgdtl (5f - rampart_ap_trampoline_start)",
    "    movl %cr0, %eax",
    "    orl $1, %eax",
    "    movl %eax, %cr0",
    "    ljmpl *(6f - rampart_ap_trampoline_start)",
    ".code32",
    "3:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    // CR4: PAE, OSFXSR, OSXMMEXCPT (the hypervisor's Rust code uses SSE).
    "    movl $0x620, %eax",
    "    movl %eax, %cr4",
    "    movl (8f - rampart_ap_trampoline_start)(%ebx), %eax",
    "    movl %eax, %cr3",
    // IA32_EFER: LME and NXE.
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    orl $0x900, %eax",
    "    wrmsr",
    // CR0: PG, WP, NE, ET, MP, PE; caches on (CD and NW clear, unlike after INIT).
    "    movl $0x80010033, %eax",
    "    movl %eax, %cr0",
    "    ljmpl *(7f - rampart_ap_trampoline_start)(%ebx)",
    ".code64",
    "4:",
    "    movq (9f - rampart_ap_trampoline_start)(%rbx), %rsp",
    "    movq (13f - rampart_ap_trampoline_start)(%rbx), %rdi",
    "    movq (12f - rampart_ap_trampoline_start)(%rbx), %rax",
    "    jmpq *%rax",
    ".balign 8",
    "2:",
    "    .quad 0",
    "    .quad 0x00af9a000000ffff",
    "    .quad 0x00cf92000000ffff",
    "    .quad 0x00cf9a000000ffff",
    "5:",
    "    .word 31",
    "    .long 0",
    "6:",
    "    .long 0",
    "    .word 0x18",
    "7:",
    "    .long 0",
    "    .word 0x08",
    ".balign 8",
    ".global rampart_ap_trampoline_params",
    "rampart_ap_trampoline_params:",
    "8:  .quad 0",
    "9:  .quad 0",
    "12: .quad 0",
    "13: .quad 0",
    ".global rampart_ap_trampoline_end",
    "rampart_ap_trampoline_end:",
    options(att_syntax)
);

extern "C" {
    static rampart_ap_trampoline_start: u8;
    static rampart_ap_trampoline_params: u8;
    static rampart_ap_trampoline_end: u8;
}

/// What the trampoline hands to long mode: CR3 (must be below 4 GiB: it is loaded from 32-bit
/// code), the stack top, the Rust entry (identity-mapped) and its one argument (RDI).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub cr3: u64,
    pub stack_top: u64,
    pub entry: u64,
    pub argument: u64,
}

/// Copies the trampoline into the page at `page` (4 KiB aligned, below 1 MiB).
///
/// # Safety
/// `page` must be identity-mapped RAM that nothing else uses while APs start.
pub unsafe fn install(page: u64) {
    let start = &raw const rampart_ap_trampoline_start;
    let end = &raw const rampart_ap_trampoline_end;
    let length = end as usize - start as usize;
    // SAFETY: the code is `length` bytes of our own read-only data; the page is ours (caller
    // contract) and longer than the code (asserted by `install_fits`).
    unsafe { core::ptr::copy_nonoverlapping(start, page as *mut u8, length.min(4096)) };
}

/// Writes the parameters for the next AP into the installed copy.
///
/// # Safety
/// As [`install`], after it; no AP may be reading the parameters concurrently.
pub unsafe fn set_params(page: u64, params: Params) {
    let start = &raw const rampart_ap_trampoline_start;
    let offset = (&raw const rampart_ap_trampoline_params) as usize - start as usize;
    // SAFETY: the parameter block lies inside the installed copy (offset < code length) and is
    // 8-byte aligned there (`.balign 8`, and the page is 4 KiB aligned).
    unsafe { core::ptr::write_volatile((page as usize + offset) as *mut Params, params) };
}
