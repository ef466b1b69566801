//! Snapshots of the UEFI memory map: the debug dump and the guest RAM top.

use rampart_boot_info::MemoryKind;
use rampart_loader::memory_map::{kind_of, UefiRegion};
use rampart_loader::PAGE_SIZE;
use uefi::boot::{self, MemoryType};
use uefi::mem::memory_map::{MemoryMap, MemoryMapOwned};

use crate::fail::{BootError, Problem};
use crate::log::{self, debug};

/// The descriptors of a memory map as carving input.
pub fn regions(map: &MemoryMapOwned) -> impl Iterator<Item = UefiRegion> + '_ {
    map.entries().map(|entry| UefiRegion {
        start: entry.phys_start,
        pages: entry.page_count,
        memory_type: entry.ty.0,
    })
}

/// The current memory map (before ExitBootServices).
pub fn snapshot() -> Result<MemoryMapOwned, BootError> {
    boot::memory_map(MemoryType::LOADER_DATA)
        .map_err(|e| BootError::new("memory map", Problem::Uefi("GetMemoryMap", e.status())))
}

/// End of the highest RAM descriptor (MMIO excluded).
pub fn ram_top(map: &MemoryMapOwned) -> u64 {
    regions(map)
        .filter(|region| kind_of(region.memory_type).is_some_and(MemoryKind::is_ram))
        .map(|region| {
            region
                .start
                .saturating_add(region.pages.saturating_mul(PAGE_SIZE))
        })
        .max()
        .unwrap_or(0)
}

/// At log=debug: one `[fw] mem: start-end type pages` line per descriptor.
pub fn dump(map: &MemoryMapOwned) {
    if !log::enabled(rampart_loader::config::LogLevel::Debug) {
        return;
    }
    for region in regions(map) {
        let end = region.start + region.pages * PAGE_SIZE;
        let name = type_name(region.memory_type);
        debug!(
            "mem: {:#012x}-{:#012x} {name} {}",
            region.start, end, region.pages
        );
    }
}

/// Short name of a UEFI memory type for the dump (UEFI 2.10 Table 7.10, plus ours).
fn type_name(memory_type: u32) -> &'static str {
    use rampart_loader::memory_map::memory_type::*;
    match memory_type {
        RESERVED => "Reserved",
        LOADER_CODE => "LoaderCode",
        LOADER_DATA => "LoaderData",
        BOOT_SERVICES_CODE => "BootServicesCode",
        BOOT_SERVICES_DATA => "BootServicesData",
        RUNTIME_SERVICES_CODE => "RuntimeServicesCode",
        RUNTIME_SERVICES_DATA => "RuntimeServicesData",
        CONVENTIONAL => "Conventional",
        UNUSABLE => "Unusable",
        ACPI_RECLAIM => "AcpiReclaim",
        ACPI_NVS => "AcpiNvs",
        MMIO => "Mmio",
        MMIO_PORT_SPACE => "MmioPortSpace",
        KERNEL => "RampartKernel",
        MODULE => "RampartModule",
        BOOT_AREA => "RampartBootArea",
        HYPERVISOR => "RampartHypervisor",
        _ => "Other",
    }
}
