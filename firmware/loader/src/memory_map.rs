//! Carving the final UEFI memory map into the guest's sorted, merged [`MemoryRegion`] list.

use core::fmt;

use rampart_boot_info::{MemoryKind, MemoryRegion, MAX_MEMORY_REGIONS};

use crate::{align_down, align_up, PAGE_SIZE};

/// Our OS-defined UEFI memory types (UEFI 2.10 7.2.1: 0x8000_0000..=0xFFFF_FFFF are for the OS
/// loader), so the final memory map itself says what every range holds.
pub mod memory_type {
    /// Loaded guest kernel segments.
    pub const KERNEL: u32 = 0x8000_0001;
    /// Boot modules (the initrd).
    pub const MODULE: u32 = 0x8000_0002;
    /// The boot area: BootInfo, boot GDT/TSS, boot page tables, boot stack.
    pub const BOOT_AREA: u32 = 0x8000_0003;
    /// The hypervisor's reserved range: never shown to the guest.
    pub const HYPERVISOR: u32 = 0x8000_0004;
    /// A page below 1 MiB for real-mode AP start-up code (the hypervisor's before the guest
    /// runs, or the native kernel's): shown to the guest as reserved.
    pub const AP_TRAMPOLINE: u32 = 0x8000_0005;

    // Standard UEFI types (UEFI 2.10 Table 7.10).
    pub const RESERVED: u32 = 0;
    pub const LOADER_CODE: u32 = 1;
    pub const LOADER_DATA: u32 = 2;
    pub const BOOT_SERVICES_CODE: u32 = 3;
    pub const BOOT_SERVICES_DATA: u32 = 4;
    pub const RUNTIME_SERVICES_CODE: u32 = 5;
    pub const RUNTIME_SERVICES_DATA: u32 = 6;
    pub const CONVENTIONAL: u32 = 7;
    pub const UNUSABLE: u32 = 8;
    pub const ACPI_RECLAIM: u32 = 9;
    pub const ACPI_NVS: u32 = 10;
    pub const MMIO: u32 = 11;
    pub const MMIO_PORT_SPACE: u32 = 12;
}

/// One UEFI memory descriptor, reduced to what carving needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UefiRegion {
    pub start: u64,
    pub pages: u64,
    pub memory_type: u32,
}

/// A physical range `[start, end)` that must not appear in the guest map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub start: u64,
    pub end: u64,
}

/// Why the memory map cannot be carved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryMapError {
    /// More than `MAX_MEMORY_REGIONS` regions after merging.
    TooManyRegions,
    /// A descriptor's range overflows the 64-bit address space.
    EntryWraps { start: u64 },
    /// Two descriptors claim the same memory.
    Overlap { start: u64 },
}

impl fmt::Display for MemoryMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooManyRegions => write!(f, "more than {MAX_MEMORY_REGIONS} memory regions"),
            Self::EntryWraps { start } => write!(f, "memory descriptor at {start:#x} wraps"),
            Self::Overlap { start } => write!(f, "memory descriptors overlap at {start:#x}"),
        }
    }
}

/// The guest's view of a UEFI memory type; `None` for memory the guest must not see.
pub const fn kind_of(uefi_type: u32) -> Option<MemoryKind> {
    use memory_type::*;
    Some(match uefi_type {
        CONVENTIONAL | BOOT_SERVICES_CODE | BOOT_SERVICES_DATA | LOADER_CODE | LOADER_DATA => {
            MemoryKind::Usable
        }
        ACPI_RECLAIM => MemoryKind::AcpiReclaimable,
        ACPI_NVS => MemoryKind::AcpiNvs,
        MMIO | MMIO_PORT_SPACE => MemoryKind::Mmio,
        RUNTIME_SERVICES_CODE | RUNTIME_SERVICES_DATA => MemoryKind::FirmwareRuntime,
        KERNEL => MemoryKind::KernelImage,
        MODULE => MemoryKind::BootModule,
        BOOT_AREA => MemoryKind::BootReclaimable,
        HYPERVISOR => return None,
        AP_TRAMPOLINE => MemoryKind::Reserved,
        _ => MemoryKind::Reserved,
    })
}

/// Carves the descriptors of `input` (any order) into `out`, leaving out every `exclude` range (rounded out to pages) and every
/// [`memory_type::HYPERVISOR`] descriptor. Returns the number of regions written: sorted by
/// start, non-overlapping, adjacent regions of the same kind merged.
pub fn carve(
    input: impl IntoIterator<Item = UefiRegion>,
    exclude: &[Excluded],
    out: &mut [MemoryRegion; MAX_MEMORY_REGIONS],
) -> Result<usize, MemoryMapError> {
    let mut count = 0;
    for region in input {
        let Some(kind) = kind_of(region.memory_type) else {
            continue;
        };
        let wraps = MemoryMapError::EntryWraps {
            start: region.start,
        };
        let length = region.pages.checked_mul(PAGE_SIZE).ok_or(wraps)?;
        let end = region.start.checked_add(length).ok_or(wraps)?;
        let mut cursor = region.start;
        while cursor < end {
            // The excluded range that starts first among those still ahead of `cursor`.
            let next = exclude
                .iter()
                .map(|range| {
                    (
                        align_down(range.start, PAGE_SIZE),
                        align_up(range.end, PAGE_SIZE).unwrap_or(u64::MAX),
                    )
                })
                .filter(|&(start, stop)| start < end && stop > cursor)
                .min_by_key(|&(start, _)| start);
            match next {
                None => {
                    count = insert(out, count, MemoryRegion::new(cursor, end - cursor, kind))?;
                    cursor = end;
                }
                Some((start, stop)) => {
                    if start > cursor {
                        count =
                            insert(out, count, MemoryRegion::new(cursor, start - cursor, kind))?;
                    }
                    cursor = stop.max(cursor);
                }
            }
        }
    }
    Ok(count)
}

/// Inserts `region` into the sorted `out[..count]`, merging with same-kind neighbours.
fn insert(
    out: &mut [MemoryRegion; MAX_MEMORY_REGIONS],
    count: usize,
    region: MemoryRegion,
) -> Result<usize, MemoryMapError> {
    let at = out[..count].partition_point(|existing| existing.start < region.start);
    let overlaps_prev = at > 0 && out[at - 1].end() > region.start;
    let overlaps_next = at < count && region.end() > out[at].start;
    if overlaps_prev || overlaps_next {
        return Err(MemoryMapError::Overlap {
            start: region.start,
        });
    }
    let merge_prev = at > 0 && out[at - 1].end() == region.start && out[at - 1].kind == region.kind;
    let merge_next = at < count && region.end() == out[at].start && out[at].kind == region.kind;
    match (merge_prev, merge_next) {
        (true, true) => {
            out[at - 1].length += region.length + out[at].length;
            out.copy_within(at + 1..count, at);
            Ok(count - 1)
        }
        (true, false) => {
            out[at - 1].length += region.length;
            Ok(count)
        }
        (false, true) => {
            out[at].start = region.start;
            out[at].length += region.length;
            Ok(count)
        }
        (false, false) => {
            if count == MAX_MEMORY_REGIONS {
                return Err(MemoryMapError::TooManyRegions);
            }
            out.copy_within(at..count, at + 1);
            out[at] = region;
            Ok(count + 1)
        }
    }
}

/// Top of guest RAM: the end of the highest region that is RAM (not MMIO).
pub fn ram_top(regions: &[MemoryRegion]) -> u64 {
    regions
        .iter()
        .filter(|region| region.kind().is_some_and(MemoryKind::is_ram))
        .map(MemoryRegion::end)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "memory_map_tests.rs"]
mod tests;
