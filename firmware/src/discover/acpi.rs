//! Finding the ACPI RSDP in the UEFI configuration table (UEFI 2.10 4.6).

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
