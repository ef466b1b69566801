//! What the ACPI tables say about PCI configuration space, DMA remapping and platform reset:
//! the MCFG's ECAM windows (PCI Firmware 3.2 4.1.2), passed to the hypervisor, which makes them
//! read-only in EPT; whether a DMAR (Intel VT-d 4.1 8.1) is present; the FADT's reset register
//! (ACPI 6.5 5.2.9 and 4.8.3.6). The last two are reported only.

use acpi::address::{AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use acpi::mcfg::Mcfg;
use acpi::sdt::Signature;
use acpi::{AcpiTable, AcpiTables};
use core::fmt;
use rampart_hypervisor::handoff::{
    McfgEntry, PortBlock, ACPI_SLEEP_REGISTERS, MAX_WINDOWS, PM1_CONTROL_LENGTH,
    SLEEP_CONTROL_LENGTH,
};

use super::acpi::IdentityMapped;
use crate::log::info;

/// FADT bytes up to and including RESET_VALUE (offset 128; ACPI 6.5 Table 5.9): a shorter
/// (revision 1) FADT has no reset register.
const FADT_RESET_VALUE_END: u32 = 129;

/// The MCFG's entries the hand-off carries.
pub type McfgEntries = [Option<McfgEntry>; MAX_WINDOWS];
/// The FADT's sleep-control registers in I/O space the hand-off carries.
pub type SleepRegisters = [Option<PortBlock>; ACPI_SLEEP_REGISTERS];

/// What the platform tables give the hypervisor.
pub struct Platform {
    pub mcfg: McfgEntries,
    pub sleep: SleepRegisters,
}

/// Reports the MCFG, DMAR and FADT lines and returns the MCFG entries and the FADT's sleep
/// registers (none without an RSDP; OVMF under Bochs has no RSDP, and there the hypervisor
/// finds the chipset's PM1 control itself).
pub fn discover(rsdp: Option<u64>) -> Platform {
    let tables = rsdp.and_then(super::acpi::tables);
    let mcfg = mcfg(tables.as_ref());
    let dmar = tables
        .as_ref()
        .is_some_and(|t| t.headers().any(|h| h.signature == Signature::DMAR));
    if dmar {
        info!("DMAR: present (VT-d remapping units not used yet)");
    } else {
        info!("DMAR: absent");
    }
    match tables.as_ref().map(reset_register) {
        Some(Ok(reset)) => info!("FADT reset register: {reset}"),
        Some(Err(why)) => info!("FADT reset register: none ({why})"),
        None => info!("FADT reset register: none (no ACPI tables)"),
    }
    Platform {
        mcfg,
        sleep: tables.as_ref().map(sleep_registers).unwrap_or_default(),
    }
}

/// The FADT's PM1a/PM1b control blocks and sleep control register, where they are in I/O
/// space (ACPI 6.5 4.8.3.2.1, 4.8.3.7); one in memory space is reported as not trapped.
fn sleep_registers(tables: &AcpiTables<IdentityMapped>) -> SleepRegisters {
    let mut out = [None; ACPI_SLEEP_REGISTERS];
    let Ok(fadt) = tables.find_table::<Fadt>() else {
        return out;
    };
    let fadt = fadt.get();
    let registers: [(&str, Option<GenericAddress>, u16); ACPI_SLEEP_REGISTERS] = [
        (
            "PM1a control",
            fadt.pm1a_control_block().ok(),
            PM1_CONTROL_LENGTH,
        ),
        (
            "PM1b control",
            fadt.pm1b_control_block().ok().flatten(),
            PM1_CONTROL_LENGTH,
        ),
        (
            "sleep control",
            fadt.sleep_control_register().ok().flatten(),
            SLEEP_CONTROL_LENGTH,
        ),
    ];
    for (slot, (name, register, length)) in out.iter_mut().zip(registers) {
        let Some(register) = register.filter(|r| r.address != 0) else {
            continue;
        };
        match (register.address_space, u16::try_from(register.address)) {
            (AddressSpace::SystemIo, Ok(port)) => {
                info!("FADT {name}: I/O {port:#x}");
                *slot = Some((port, length));
            }
            _ => info!(
                "FADT {name}: {:?} {:#x}: not in I/O space, NOT trapped (sleep requests through it are not refused)",
                register.address_space, register.address
            ),
        }
    }
    out
}

fn mcfg(tables: Option<&AcpiTables<IdentityMapped>>) -> McfgEntries {
    let mut out = [None; MAX_WINDOWS];
    let Some(mcfg) = tables.and_then(|t| t.find_table::<Mcfg>().ok()) else {
        info!("no ACPI MCFG: no ECAM window");
        return out;
    };
    let mcfg = mcfg.get();
    let entries = mcfg.entries();
    if entries.is_empty() {
        info!("no ACPI MCFG entries: no ECAM window");
    }
    for (index, raw) in entries.iter().enumerate() {
        let entry = McfgEntry {
            base: raw.base_address,
            segment: raw.pci_segment_group,
            first_bus: raw.bus_number_start,
            last_bus: raw.bus_number_end,
        };
        let (segment, first, last) = (entry.segment, entry.first_bus, entry.last_bus);
        match entry.window() {
            Some(window) => info!(
                "MCFG: ECAM {:#x}-{:#x} (segment {segment}, buses {first}-{last})",
                window.start,
                window.end() - 1
            ),
            None => info!(
                "MCFG: ECAM base {:#x} (segment {segment}, buses {first}-{last}): empty bus range",
                entry.base
            ),
        }
        match out.get_mut(index) {
            Some(slot) => *slot = Some(entry),
            None => info!(
                "MCFG: entry {index} not passed on (the hand-off holds {MAX_WINDOWS}): configuration writes through it are not mediated"
            ),
        }
    }
    out
}

/// The FADT's reset register and value, for the log.
struct ResetRegister {
    space: AddressSpace,
    address: u64,
    value: u8,
}

impl fmt::Display for ResetRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let space = match self.space {
            AddressSpace::SystemIo => "I/O",
            AddressSpace::SystemMemory => "memory",
            // Bus 0; address bits 47:32 device, 31:16 function, 15:0 offset (ACPI 6.5 5.2.3.2).
            AddressSpace::PciConfigSpace => "PCI configuration (bus 0)",
            _ => "address space not allowed for RESET_REG (ACPI 6.5 4.8.3.6)",
        };
        write!(f, "{space} {:#x} value {:#04x}", self.address, self.value)
    }
}

fn reset_register(tables: &AcpiTables<IdentityMapped>) -> Result<ResetRegister, &'static str> {
    let fadt = tables.find_table::<Fadt>().map_err(|_| "no FADT")?;
    let fadt = fadt.get();
    if fadt.header().length < FADT_RESET_VALUE_END {
        return Err("FADT revision 1: no reset register");
    }
    // FADT Fixed Feature Flags bit 10, RESET_REG_SUP (ACPI 6.5 Table 5.10).
    let flags = fadt.flags;
    if !flags.supports_system_reset_via_fadt() {
        return Err("RESET_REG_SUP clear");
    }
    let register = fadt
        .reset_register()
        .map_err(|_| "malformed generic address")?;
    Ok(ResetRegister {
        space: register.address_space,
        address: register.address,
        value: fadt.reset_value,
    })
}
