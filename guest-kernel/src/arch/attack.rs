//! The raw instructions of the attack suite (`attacks`, cargo feature `attacks`): what a
//! compromised kernel would execute. Each is `unsafe`: it is meant to be refused by the
//! hypervisor (a fault ends the calling kernel thread) and, natively, to be harmless only
//! because the caller writes back what was there and restores what it changed.

use super::gdt::DescriptorTablePointer;
use core::arch::{asm, global_asm};

/// Reads the byte at `address`.
///
/// # Safety
/// `address` must be mapped readable, or the caller must be a kernel thread that may die of
/// the fault.
pub unsafe fn read_byte(address: u64) -> u8 {
    // SAFETY: delegated to the caller.
    unsafe { core::ptr::read_volatile(address as *const u8) }
}

/// Writes `value` to the byte at `address`.
///
/// # Safety
/// As [`read_byte`], and the write must not change anything the kernel relies on (the
/// attacks write back the value that is there).
pub unsafe fn write_byte(address: u64, value: u8) {
    // SAFETY: delegated to the caller.
    unsafe { core::ptr::write_volatile(address as *mut u8, value) }
}

/// The first byte of [`text_target`]: its whole body is one `ret` (opcode C3).
pub const TEXT_TARGET_BYTE: u8 = 0xc3;

/// A function in kernel text whose first byte is known at compile time, so the text attacks
/// can write that same byte without reading text first (kernel text is execute-only where EPT
/// allows it, so a read would be refused before the write is tried).
#[unsafe(naked)]
pub extern "sysv64" fn text_target() {
    core::arch::naked_asm!("ret")
}

/// Calls the code at `address` (shellcode ending in `ret`).
///
/// # Safety
/// `address` must hold code that returns and preserves the callee-saved registers, or the
/// caller must be a kernel thread that may die of the fault.
pub unsafe fn call(address: u64) {
    // SAFETY: delegated to the caller; the code is a bare `ret`, every caller-saved register
    // is declared clobbered.
    unsafe { asm!("call {}", in(reg) address, clobber_abi("sysv64")) };
}

/// Calls the code at `address` and returns what it left in RAX.
///
/// # Safety
/// As [`call`].
pub unsafe fn call_returning(address: u64) -> u64 {
    let result: u64;
    // SAFETY: delegated to the caller; every caller-saved register is declared clobbered and
    // RAX is read back as the result.
    unsafe { asm!("call {}", in(reg) address, out("rax") result, clobber_abi("sysv64")) };
    result
}

/// The IDT register: (base, limit).
pub fn sidt() -> (u64, u16) {
    let mut pointer = DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: SIDT only stores 10 bytes into `pointer` (emulated by Rampart once the tables
    // are locked).
    unsafe { asm!("sidt [{}]", in(reg) &raw mut pointer, options(nostack, preserves_flags)) };
    (pointer.base, pointer.limit)
}

/// Loads the IDT register.
///
/// # Safety
/// `[base, base + limit]` must hold a valid IDT for every vector that can arrive while it is
/// loaded.
pub unsafe fn lidt(base: u64, limit: u16) {
    let pointer = DescriptorTablePointer { limit, base };
    // SAFETY: delegated to the caller.
    unsafe {
        asm!("lidt [{}]", in(reg) &raw const pointer, options(readonly, nostack, preserves_flags))
    };
}

/// Markers in kernel read-only data that the IPI attacks' payloads write by physical address
/// (index 0: the woken CPU's code, 1: the SMI handler after an ICR SMI, 2: the same handler
/// after an APM-port SMI). Read only with [`read_marker`].
static MARKERS: [u8; 3] = [0; 3];
/// Marker indexes.
pub const MARKER_WAKE: usize = 0;
pub const MARKER_SMI: usize = 1;
pub const MARKER_APM_SMI: usize = 2;

/// Bytes of [`DMA_TARGET`]: one disk sector.
pub const DMA_TARGET_LENGTH: usize = 512;
/// What [`DMA_TARGET`] holds in the image (not zero, so it lies in read-only data, not .bss).
pub const DMA_TARGET_FILL: u8 = 0xa5;

/// A sector of kernel read-only data, page-aligned, that the device attack asks a disk
/// controller to overwrite by DMA (it stands for the kernel's other read-only pages: a DMA
/// write is not checked by EPT). Read only with [`read_dma_target`].
#[repr(C, align(4096))]
pub struct DmaTarget([u8; DMA_TARGET_LENGTH]);
static DMA_TARGET: DmaTarget = DmaTarget([DMA_TARGET_FILL; DMA_TARGET_LENGTH]);

/// Virtual address of [`DMA_TARGET`].
pub fn dma_target_address() -> u64 {
    (&raw const DMA_TARGET) as u64
}

/// Byte `index` of [`DMA_TARGET`] (which only a device can change, behind the compiler's back).
pub fn read_dma_target(index: usize) -> u8 {
    assert!(index < DMA_TARGET_LENGTH);
    // SAFETY: in bounds (checked), a mapped, readable byte of the kernel image.
    unsafe { core::ptr::read_volatile((dma_target_address() as *const u8).add(index)) }
}
/// The value the payloads write.
pub const MARKER_VALUE: u8 = 0x5a;

/// Virtual address of marker `index` (in the kernel image, read-only data).
pub fn marker_address(index: usize) -> u64 {
    (&raw const MARKERS[index]) as u64
}

/// The current value of marker `index` (which only a payload can change, behind the
/// compiler's back: hence the volatile read).
pub fn read_marker(index: usize) -> u8 {
    // SAFETY: the marker is a mapped, readable byte of the kernel image.
    unsafe { core::ptr::read_volatile(marker_address(index) as *const u8) }
}

/// Where the wake payload's parameters sit in its page.
const WAKE_DATA: usize = 0xf00;
const WAKE_TARGET: usize = WAKE_DATA;
const WAKE_VALUE: usize = WAKE_DATA + 0x08;
const WAKE_PROTECTED_JUMP: usize = WAKE_DATA + 0x38;
const WAKE_GDTR: usize = WAKE_DATA + 0x40;
/// Offset of the SMI handler's parameters from SMBASE + 0x8000 (its CS-relative IP).
const SMI_DATA: usize = 0x100;
/// SMM entry IP (SDM Vol. 3C 32.5.1): SMBASE + 0x8000 is where the handler starts.
pub const SMM_ENTRY_OFFSET: u64 = 0x8000;

// The payload a woken CPU runs (INIT-SIPI-SIPI at its page P): real mode, then flat protected
// mode, one byte to the physical address in its parameters, then halt for good. EBX = P.
// The SMI handler: at SMM entry DS has base 0 and limit 4 GiB (SDM Vol. 3C 32.5.1, Table 32-4),
// so a 32-bit address reaches the marker; CS is SMBASE, IP 0x8000; then RSM.
global_asm!(
    ".section .rodata.attack_payloads, \"a\"",
    ".balign 16",
    ".global attack_wake_start",
    "attack_wake_start:",
    ".code16",
    "    cli",
    "    xorl %ebx, %ebx",
    "    movw %cs, %bx",
    "    movw %bx, %ds",
    "    shll $4, %ebx",
    "    lgdtl {wake_gdtr}",
    "    movl %cr0, %eax",
    "    orl $1, %eax",
    "    movl %eax, %cr0",
    "    ljmpl *{wake_jump}",
    ".code32",
    ".global attack_wake_protected",
    "attack_wake_protected:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movl {wake_target}(%ebx), %edi",
    "    movb {wake_value}(%ebx), %al",
    "    movb %al, (%edi)",
    "2:",
    "    cli",
    "    hlt",
    "    jmp 2b",
    ".balign 8",
    ".global attack_wake_gdt",
    "attack_wake_gdt:",
    "    .quad 0",
    "    .quad 0x00cf9a000000ffff",
    "    .quad 0x00cf92000000ffff",
    ".global attack_wake_end",
    "attack_wake_end:",
    ".code16",
    ".global attack_smi_start",
    "attack_smi_start:",
    "    movl %cs:{smi_target}, %ebx",
    "    movb %cs:{smi_value}, %al",
    "    movb %al, (%ebx)",
    "    rsm",
    ".global attack_smi_end",
    "attack_smi_end:",
    ".code64",
    ".previous",
    wake_gdtr = const WAKE_GDTR,
    wake_jump = const WAKE_PROTECTED_JUMP,
    wake_target = const WAKE_TARGET,
    wake_value = const WAKE_VALUE,
    smi_target = const SMM_ENTRY_OFFSET as usize + SMI_DATA,
    smi_value = const SMM_ENTRY_OFFSET as usize + SMI_DATA + 8,
    options(att_syntax)
);

extern "C" {
    static attack_wake_start: u8;
    static attack_wake_protected: u8;
    static attack_wake_gdt: u8;
    static attack_wake_end: u8;
    static attack_smi_start: u8;
    static attack_smi_end: u8;
}

/// The bytes from `start` to `end` (a payload in read-only data).
fn payload(start: *const u8, end: *const u8) -> &'static [u8] {
    // SAFETY: both symbols delimit one payload in the kernel's read-only data.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Copies `code` and the `(offset, bytes)` parameters into physical page `page` (direct map).
///
/// # Safety
/// `page` must be RAM below 4 GiB that nothing else uses, and every offset + length at most
/// 4 KiB.
unsafe fn install(page: u64, code: &[u8], parameters: &[(usize, &[u8])]) {
    let base = crate::mm::layout::phys_to_virt(page) as *mut u8;
    // SAFETY: per the caller, the page is unused RAM in the direct map and all copies fit.
    unsafe {
        core::ptr::copy_nonoverlapping(code.as_ptr(), base, code.len());
        for (offset, bytes) in parameters {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(*offset), bytes.len());
        }
    }
}

/// Puts the wake payload in page `page` (below 1 MiB): it writes [`MARKER_VALUE`] to physical
/// `target`.
///
/// # Safety
/// `page` must be a page below 1 MiB that nothing else uses (the BootInfo's AP trampoline page,
/// once every AP runs), and `target` below 4 GiB.
pub unsafe fn install_wake_payload(page: u64, target: u64) {
    let code = payload(&raw const attack_wake_start, &raw const attack_wake_end);
    let offset = |symbol: *const u8| symbol as usize - (&raw const attack_wake_start) as usize;
    let mut jump = [0u8; 6];
    jump[..4].copy_from_slice(
        &(page as u32 + offset(&raw const attack_wake_protected) as u32).to_le_bytes(),
    );
    jump[4..].copy_from_slice(&0x08u16.to_le_bytes());
    let mut gdtr = [0u8; 6];
    gdtr[..2].copy_from_slice(&23u16.to_le_bytes());
    gdtr[2..]
        .copy_from_slice(&(page as u32 + offset(&raw const attack_wake_gdt) as u32).to_le_bytes());
    let target = (target as u32).to_le_bytes();
    assert!(code.len() <= WAKE_DATA);
    // SAFETY: delegated to the caller; the code stays below WAKE_DATA and the parameters below
    // WAKE_DATA + 0x48.
    unsafe {
        install(
            page,
            code,
            &[
                (WAKE_TARGET, &target),
                (WAKE_VALUE, &[MARKER_VALUE]),
                (WAKE_PROTECTED_JUMP, &jump),
                (WAKE_GDTR, &gdtr),
            ],
        )
    };
}

/// Puts the SMI handler at `smbase` + 0x8000: it writes [`MARKER_VALUE`] to physical `target`.
///
/// # Safety
/// `smbase + 0x8000` must start a page of RAM below 4 GiB that nothing else uses, and `target`
/// lie below 4 GiB.
pub unsafe fn install_smi_handler(smbase: u64, target: u64) {
    let code = payload(&raw const attack_smi_start, &raw const attack_smi_end);
    assert!(code.len() <= SMI_DATA);
    let target = (target as u32).to_le_bytes();
    // SAFETY: delegated to the caller.
    unsafe {
        install(
            smbase + SMM_ENTRY_OFFSET,
            code,
            &[(SMI_DATA, &target), (SMI_DATA + 8, &[MARKER_VALUE])],
        )
    };
}

/// Raises #BP with whatever IDT is loaded: at boot under Rampart there is none (IDTR limit 0),
/// so #BP becomes #GP, then #DF, then a triple fault (SDM Vol. 3A 7.14.1, 7.15): the
/// `crash=triple-fault` test of a failure the hypervisor must report.
pub fn breakpoint_without_idt() -> ! {
    loop {
        // SAFETY: INT3 only raises #BP; what follows is the deliberate triple fault.
        unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
    }
}
