//! The IDT (SDM Vol. 3A 6.14.1 "64-Bit Mode IDT"): one interrupt gate per vector, each to its
//! stub in `arch::interrupts`; #DF, NMI and #MC on their own IST stacks.

use super::gdt::{self, DescriptorTablePointer};
use super::interrupts;
use crate::trap;
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

const VECTORS: usize = 256;
/// Gate type 0xE: 64-bit interrupt gate (IF cleared on entry), with P=1 and DPL0.
const INTERRUPT_GATE_PRESENT: u64 = 0x8e << 40;

/// The IDT on a page of its own, so the hypervisor can later make it read-only in EPT.
#[repr(C, align(4096))]
struct Idt([[u64; 2]; VECTORS]);
const _: () = assert!(core::mem::size_of::<Idt>() == 4096);

struct IdtCell(UnsafeCell<Idt>);
// SAFETY: written only by `init`, once (guarded by `INSTALLED`), with interrupts off, before
// LIDT hands it to the CPU; read only by the CPU afterwards.
unsafe impl Sync for IdtCell {}

/// In the KPTI entry data: the CPU reads the IDT on entry from ring 3 (`mm::kpti`).
#[link_section = ".data.kpti"]
static IDT: IdtCell = IdtCell(UnsafeCell::new(Idt([[0; 2]; VECTORS])));
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// An interrupt gate to `handler` in the kernel code segment, on IST stack `ist` (0 = none).
const fn interrupt_gate(handler: u64, ist: u8) -> [u64; 2] {
    let low = (handler & 0xffff)
        | ((gdt::KERNEL_CODE_SELECTOR as u64) << 16)
        | ((ist as u64 & 0b111) << 32)
        | INTERRUPT_GATE_PRESENT
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// Which IST stack a vector runs on: the ones that can strike on a broken kernel stack.
const fn ist_for(vector: u8) -> u8 {
    match vector {
        trap::VECTOR_DOUBLE_FAULT => gdt::IST_DOUBLE_FAULT,
        trap::VECTOR_NMI => gdt::IST_NMI,
        trap::VECTOR_MACHINE_CHECK => gdt::IST_MACHINE_CHECK,
        _ => 0,
    }
}

/// Fills and loads the IDT. Needs the GDT and TSS of `gdt::init` (for the IST stacks).
/// Panics if called twice.
pub fn init() {
    assert!(
        !INSTALLED.swap(true, Ordering::SeqCst),
        "IDT installed twice"
    );
    // SAFETY: first and only call (checked above), interrupts off: no other reference to the
    // IDT exists and the CPU does not read it until the LIDT below.
    let idt = unsafe { &mut *IDT.0.get() };
    for (vector, gate) in (0..=u8::MAX).zip(idt.0.iter_mut()) {
        *gate = interrupt_gate(interrupts::stub_address(vector), ist_for(vector));
    }
    load();
}

/// Loads the IDT [`init`] filled on this CPU (every CPU shares it). Panics before `init`.
pub fn load() {
    assert!(is_installed(), "IDT not built yet");
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is static and every gate points at a stub of `arch::interrupts` in the
    // kernel code segment; LIDT reads the 10-byte pointer only.
    unsafe {
        asm!("lidt [{}]", in(reg) &raw const pointer, options(readonly, nostack, preserves_flags))
    };
}

/// The IDT's base (for the KPTI template check).
pub fn base() -> u64 {
    IDT.0.get() as u64
}

/// True once [`init`] has loaded the IDT.
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
}
