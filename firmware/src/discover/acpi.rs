//! Finding the ACPI RSDP in the UEFI configuration table (UEFI 2.10 4.6), and the `acpi`
//! crate's view of the tables it points to.
#![allow(unsafe_code)]

use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use core::ptr::NonNull;
use uefi::table::cfg::ConfigTableEntry;

/// Physical address of the RSDP: the ACPI 2.0 entry if present, else the ACPI 1.0 one.
pub fn find_rsdp() -> Option<u64> {
    uefi::system::with_config_table(|entries| {
        [ConfigTableEntry::ACPI2_GUID, ConfigTableEntry::ACPI_GUID]
            .into_iter()
            .find_map(|guid| {
                entries
                    .iter()
                    .find(|entry| entry.guid == guid)
                    .map(|entry| entry.address as u64)
            })
    })
}

/// The ACPI tables behind the RSDP, or `None` if the RSDP is invalid.
pub fn tables(rsdp: u64) -> Option<AcpiTables<IdentityMapped>> {
    // SAFETY: `rsdp` comes from the UEFI configuration table (`find_rsdp`), which points at
    // the platform's RSDP; `from_rsdp` validates its checksum before following it.
    unsafe { AcpiTables::from_rsdp(IdentityMapped, rsdp as usize) }.ok()
}

/// UEFI identity-maps all memory while boot services run, so a physical address is its own
/// mapping.
#[derive(Clone, Copy, Debug)]
pub struct IdentityMapped;

impl AcpiHandler for IdentityMapped {
    unsafe fn map_physical_region<T>(
        &self,
        address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        // SAFETY: under boot services every physical address is identity-mapped; `acpi` only
        // asks for regions its tables name (the caller's contract covers their validity).
        unsafe {
            PhysicalMapping::new(
                address,
                NonNull::new(address as *mut T).unwrap_or(NonNull::dangling()),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}
