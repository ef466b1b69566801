//! PCI Express ECAM ("MMCONFIG"): the memory window through which configuration space is
//! reached without the 0xCF8/0xCFC ports (PCI Express Base 4.0 7.2.2, "PCI Express Enhanced
//! Configuration Access Mechanism"), located by the ACPI MCFG table (PCI Firmware 3.2 4.1.2).
//! A write through it would bypass the configuration filter (`pci`): bus mastering and BAR
//! moves. Without MMIO write emulation the window is read-only in EPT, so the guest still
//! reads configuration space there and writes it through the filtered ports; a write to the
//! window is a #VE with audit rule `dma` (the Command register) or `device-bar` (any other).
#![forbid(unsafe_code)]

use crate::ept::builder::{Ept, EptError, TableMemory};
use crate::ept::entry::{MemoryType, Permissions};
use crate::ept::layout::memory_type_of;
use crate::handoff::PhysRange;
pub use crate::handoff::{McfgEntry, MAX_WINDOWS};
use rampart_boot_info::MemoryRegion;
use rampart_hv_abi::Rule;

/// Each bus has 32 devices x 8 functions x 4 KiB of configuration space: address bits 27:20
/// select the bus, 19:15 the device, 14:12 the function, 11:0 the register (PCI Express Base
/// 4.0 7.2.2, Table 7-1). The window's base therefore has bits 19:0 clear.
const BUS_BYTES: u64 = 1 << 20;
const FUNCTION_BYTES: u64 = 4096;
/// The last configuration-space byte a write may start at and still reach the Command register
/// (offset 0x04, 2 bytes; PCI Local Bus 3.0 6.1): the exit does not give the access size, so
/// a write starting at 0x00-0x05 is counted as one that can set Bus Master Enable.
const COMMAND_LAST_BYTE: u64 = crate::devices::pci::COMMAND as u64 + 1;
/// The EPT builder maps below 2^48.
const ADDRESS_LIMIT: u64 = 1 << 48;

impl McfgEntry {
    /// The physical window of buses `first_bus..=last_bus`: `base + first_bus * 1 MiB` up to
    /// `base + (last_bus + 1) * 1 MiB`. The PCI Firmware specification leaves open whether
    /// `base` is bus 0's address or `first_bus`'s; Linux (`pci_mmconfig_alloc`) and FreeBSD
    /// read it as bus 0's, and so does Rampart (the `acpi` crate's `physical_address` reads
    /// it as `first_bus`'s; both agree when `first_bus` is 0). `None` for an empty or
    /// overflowing range.
    pub fn window(&self) -> Option<PhysRange> {
        let start = self
            .base
            .checked_add(u64::from(self.first_bus) * BUS_BYTES)?;
        let buses = u64::from(self.last_bus.checked_sub(self.first_bus)?) + 1;
        start.checked_add(buses * BUS_BYTES)?;
        Some(PhysRange::new(start, buses * BUS_BYTES))
    }
}

/// Why an MCFG entry's window is not made read-only (the boot log names it; writes through
/// that window are then not mediated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The last bus is below the first, or the window wraps.
    #[error("empty or wrapping bus range")]
    BusRange,
    /// The base has address bits 19:0 set, which select device, function and register.
    #[error("base not 1 MiB aligned")]
    Unaligned,
    /// The window ends above what EPT maps (2^48).
    #[error("window above 2^48")]
    TooHigh,
    /// The window overlaps RAM in the memory map: the MCFG is wrong.
    #[error("window overlaps RAM")]
    OverlapsRam,
    /// The window overlaps the hypervisor's memory, which stays absent from EPT.
    #[error("window overlaps the hypervisor")]
    OverlapsHypervisor,
}

/// Checks an MCFG entry against the memory map and the hypervisor's ranges and returns its
/// window: 1 MiB aligned, below 2^48, over no write-back RAM (what EPT maps as RAM) and none
/// of the hypervisor's ranges.
pub fn check(
    entry: &McfgEntry,
    regions: &[MemoryRegion],
    hypervisor: &[PhysRange],
) -> Result<PhysRange, Rejected> {
    let window = entry.window().ok_or(Rejected::BusRange)?;
    if !entry.base.is_multiple_of(BUS_BYTES) {
        return Err(Rejected::Unaligned);
    }
    if window.end() > ADDRESS_LIMIT {
        return Err(Rejected::TooHigh);
    }
    let ram = regions.iter().any(|r| {
        memory_type_of(r.kind()) == MemoryType::WriteBack
            && window.overlaps(&PhysRange::new(r.start, r.length))
    });
    if ram {
        return Err(Rejected::OverlapsRam);
    }
    if hypervisor
        .iter()
        .any(|h| h.length != 0 && window.overlaps(h))
    {
        return Err(Rejected::OverlapsHypervisor);
    }
    Ok(window)
}

/// The windows of the firmware's MCFG entries that pass [`check`]; each rejected one is a
/// boot-log warning (writes through it are then not mediated).
pub fn checked_windows(
    entries: &[Option<McfgEntry>],
    regions: &[MemoryRegion],
    hypervisor: &[PhysRange],
) -> Windows {
    let mut windows = Windows::new();
    for entry in entries.iter().flatten() {
        match check(entry, regions, hypervisor) {
            // As many windows as entries: never full.
            Ok(window) => windows.push(window).unwrap_or(()),
            Err(why) => log::warn!(
                "ECAM: MCFG entry base {:#x} segment {} buses {}-{} not made read-only ({why}): configuration writes through it are not mediated",
                entry.base,
                entry.segment,
                entry.first_bus,
                entry.last_bus
            ),
        }
    }
    windows
}

/// The checked ECAM windows, read-only in EPT.
pub type Windows = heapless::Vec<PhysRange, MAX_WINDOWS>;

pub fn total_bytes(windows: &Windows) -> u64 {
    windows.iter().map(|r| r.length).sum()
}

/// The audit rule for a blocked write at `gpa`, if `gpa` is in a window: `dma` where the write
/// may reach the Command register (Bus Master Enable), `device-bar` for any other register
/// (BARs, ROM BAR, bridge windows, capabilities: a configuration change the filter did not see).
pub fn write_rule(windows: &Windows, gpa: u64) -> Option<Rule> {
    let window = windows.iter().find(|r| r.start <= gpa && gpa < r.end())?;
    let register = (gpa - window.start) % FUNCTION_BYTES;
    Some(if register <= COMMAND_LAST_BYTE {
        Rule::Dma
    } else {
        Rule::DeviceBar
    })
}

/// Makes every window read-only and uncacheable in EPT (ECAM is MMIO). The builder uses 2 MiB
/// (or 1 GiB) pages wherever a window covers them whole, so a 256 MiB window costs at most one
/// page directory and two page tables.
pub fn map_read_only<M: TableMemory>(ept: &mut Ept<M>, windows: &Windows) -> Result<(), EptError> {
    for window in windows {
        ept.map(
            window.start,
            window.length,
            Permissions::READ,
            MemoryType::Uncacheable,
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "ecam_tests.rs"]
mod tests;
