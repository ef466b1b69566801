//! The MSR attacks: MSRs are default-deny under Rampart. `apic-base-move` moves the local
//! APIC's window (IA32_APIC_BASE: #GP + `ipi-delivery`); `msr-unknown-write` and
//! `msr-unknown-read` touch the variable MTRRs, which no kernel of ours needs (#GP + `msr`).
//! Natively each change is read back, then undone.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::verdict::Attempt;
use crate::arch::{cpu, hypercall};

/// IA32_APIC_BASE bits 12 and up: the base of the xAPIC window (SDM Vol. 3A 11.4.4).
const APIC_BASE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// Where the attack moves the window: 1 MiB up (0xFEF00000 from the default, nothing there).
const APIC_MOVE: u64 = 0x10_0000;
/// IA32_MTRR_PHYSBASE7 (SDM Vol. 3A 12.11.2.3): the last variable-range MTRR on the platforms'
/// models (8 of them), unused by the firmware there.
const IA32_MTRR_PHYSBASE7: u32 = 0x20e;
/// IA32_MTRR_DEF_TYPE: the default memory type and the MTRR enables.
const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
/// A valid PHYSBASE value: base 0, type write-back (6); a second one if that is already there.
const MTRR_WRITE_BACK: u64 = 0x6;
const MTRR_WRITE_BACK_AT_4K: u64 = 0x1006;

pub fn apic_base_move() -> Attempt {
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU (reading it passes under Rampart).
    let base = unsafe { cpu::rdmsr(cpu::IA32_APIC_BASE) };
    let moved = (base & !APIC_BASE_ADDRESS) | ((base & APIC_BASE_ADDRESS) + APIC_MOVE);
    // SAFETY: interrupts are off in this thread and nothing touches this CPU's local APIC
    // between the move and the write-back (IPIs and timer interrupts arrive regardless of
    // where the window is; in x2APIC mode the base is not used at all).
    let readback = unsafe {
        cpu::wrmsr(cpu::IA32_APIC_BASE, moved);
        let readback = cpu::rdmsr(cpu::IA32_APIC_BASE);
        cpu::wrmsr(cpu::IA32_APIC_BASE, base);
        readback
    };
    if readback == moved {
        Attempt::Done
    } else {
        Attempt::NotApplicable("write ignored")
    }
}

pub fn msr_unknown_write() -> Attempt {
    if hypercall::rampart().is_some() {
        // A blind write: reading first would be refused (and audited) on its own.
        // SAFETY: under Rampart the write exits and is refused; it never reaches the CPU.
        unsafe { cpu::wrmsr(IA32_MTRR_PHYSBASE7, MTRR_WRITE_BACK) };
        return Attempt::Done;
    }
    // SAFETY: the variable MTRRs exist on every model here; PHYSBASE7 is unused (its mask is
    // not valid), a valid type is written, and the old value goes back right after.
    unsafe {
        let old = cpu::rdmsr(IA32_MTRR_PHYSBASE7);
        let new = if old == MTRR_WRITE_BACK {
            MTRR_WRITE_BACK_AT_4K
        } else {
            MTRR_WRITE_BACK
        };
        cpu::wrmsr(IA32_MTRR_PHYSBASE7, new);
        let readback = cpu::rdmsr(IA32_MTRR_PHYSBASE7);
        cpu::wrmsr(IA32_MTRR_PHYSBASE7, old);
        if readback == new {
            Attempt::Done
        } else {
            Attempt::NotApplicable("write ignored")
        }
    }
}

pub fn msr_unknown_read() -> Attempt {
    // SAFETY: reading an MSR has no side effects; IA32_MTRR_DEF_TYPE exists wherever MTRRs do.
    let _ = unsafe { cpu::rdmsr(IA32_MTRR_DEF_TYPE) };
    Attempt::Done
}
