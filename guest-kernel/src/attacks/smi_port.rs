//! `apm-smi`: an SMI through the chipset's APM control port (0xB2) instead of the ICR. The
//! attack first enables APM SMIs in the chipset where it knows how (ICH9: SMI_EN in the ACPI
//! I/O block; PIIX4: the power-management function's register 0x5B), then writes the port.
//! Natively the SMI handler at the default SMBASE (the one `smi-self` uses) writes a rodata
//! marker; under Rampart the port write is dropped and audited (`smi`).
#![allow(unsafe_code)] // the attack itself; each block says why it is harmless natively

use super::ipi::{self, DEFAULT_SMBASE};
use super::pci::{self, Function};
use super::verdict::Attempt;
use crate::arch::{attack, hypercall, port};

/// APM control port (ICH9/PIIX4): a write raises an SMI when APM SMIs are enabled.
const APM_CONTROL: u16 = 0xb2;
/// What the attack writes there (not 0xE1/0x1E, which QEMU reads as ACPI enable/disable).
const APM_COMMAND: u8 = 0x5a;
/// ICH9 LPC bridge (8086:2918): PMBASE at 0x40 (bits 15:7), SMI_EN at PMBASE + 0x30 with
/// GBL_SMI_EN (bit 0) and APMC_EN (bit 5) (ICH9 datasheet 13.8.3.12).
const ICH9_LPC: u32 = 0x2918_8086;
const ICH9_PMBASE: u8 = 0x40;
const ICH9_PMBASE_MASK: u32 = 0xff80;
const ICH9_SMI_EN: u16 = 0x30;
const ICH9_SMI_ENABLE_BITS: u32 = (1 << 0) | (1 << 5);
/// PIIX4 power management function (8086:7113): register 0x5B bit 1 enables APM SMIs
/// (PIIX4 datasheet, DEVACTB; Bochs's ACPI model checks it).
const PIIX4_PM: u32 = 0x7113_8086;
const PIIX4_DEVACTB: u8 = 0x58;
const PIIX4_APMC_EN: u32 = 1 << 25;

/// How APM SMIs were enabled, to undo it.
enum Enabled {
    Ich9 { port: u16, old: u32 },
    Piix4 { function: Function, old: u32 },
    Unknown,
}

/// Enables APM SMIs in the chipset (a compromised kernel's first step).
fn enable_apm_smis() -> Enabled {
    if let Some(lpc) = pci::find_id(ICH9_LPC) {
        let base = (lpc.read32(ICH9_PMBASE) & ICH9_PMBASE_MASK) as u16;
        if base != 0 {
            let port = base + ICH9_SMI_EN;
            // SAFETY: SMI_EN only selects which events raise an SMI; restored by `restore`.
            let old = unsafe { port::inl(port) };
            // SAFETY: as above.
            unsafe { port::outl(port, old | ICH9_SMI_ENABLE_BITS) };
            return Enabled::Ich9 { port, old };
        }
    }
    if let Some(function) = pci::find_id(PIIX4_PM) {
        let old = function.read32(PIIX4_DEVACTB);
        // SAFETY: DEVACTB only selects which events raise an SMI; restored by `restore`.
        unsafe { function.write32(PIIX4_DEVACTB, old | PIIX4_APMC_EN) };
        return Enabled::Piix4 { function, old };
    }
    Enabled::Unknown
}

fn restore(enabled: Enabled) {
    match enabled {
        // SAFETY: the value the register had before the attack.
        Enabled::Ich9 { port, old } => unsafe { port::outl(port, old) },
        // SAFETY: as above.
        Enabled::Piix4 { function, old } => unsafe { function.write32(PIIX4_DEVACTB, old) },
        Enabled::Unknown => {}
    }
}

pub fn apm_smi() -> Attempt {
    let before = ipi::audit_count();
    // As in `smi-self`: under Rampart the default SMBASE area is the hypervisor's.
    if hypercall::rampart().is_none() {
        let marker = ipi::marker_physical(attack::MARKER_APM_SMI);
        // SAFETY: the default SMRAM window is kept out of the frame allocator in kernels with
        // the attack suite, so the handler overwrites nothing in use.
        unsafe { attack::install_smi_handler(DEFAULT_SMBASE, marker) };
    }
    let enabled = enable_apm_smis();
    // SAFETY: the SMI runs the handler above (it only writes the marker and resumes) or, under
    // Rampart, the write is dropped.
    unsafe { port::outb(APM_CONTROL, APM_COMMAND) };
    let attempt = ipi::outcome(attack::MARKER_APM_SMI, before, "no SMI taken");
    restore(enabled);
    attempt
}
