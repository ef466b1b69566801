//! The raw instructions of the attack suite (`crate::attacks`, cargo feature `attacks`): what a
//! compromised kernel would execute. Each is `unsafe`: it is meant to be refused by the
//! hypervisor (a fault ends the calling kernel thread) and, natively, to be harmless only
//! because the caller writes back what was there and restores what it changed.

use super::gdt::DescriptorTablePointer;
use core::arch::asm;

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
