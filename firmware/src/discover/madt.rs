//! The CPUs the ACPI MADT lists (ACPI 6.5 5.2.12), to cross-check MP services: a CPU the MADT
//! names but MP services does not is still started by the hypervisor, so that no CPU is left
//! outside VMX because one source missed it. Parsed with the `acpi` crate.
#![allow(unsafe_code)]

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use core::ptr::NonNull;
use rampart_boot_info::MAX_CPUS;

/// MADT Local APIC / x2APIC flags bit 0: enabled; bit 1: online capable (ACPI 6.5 Table 5.24).
const FLAG_ENABLED: u32 = 1 << 0;
const FLAG_ONLINE_CAPABLE: u32 = 1 << 1;

/// UEFI identity-maps all memory while boot services run, so a physical address is its own
/// mapping.
#[derive(Clone, Copy, Debug)]
struct IdentityMapped;

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

/// APIC IDs of the usable processors in the MADT, or `None` without an RSDP or MADT.
pub fn apic_ids(rsdp: u64) -> Option<([u32; MAX_CPUS], usize)> {
    // SAFETY: `rsdp` comes from the UEFI configuration table (`acpi::find_rsdp`), which points
    // at the platform's RSDP; `from_rsdp` validates its checksum before following it.
    let tables = unsafe { AcpiTables::from_rsdp(IdentityMapped, rsdp as usize) }.ok()?;
    let madt = tables.find_table::<Madt>().ok()?;
    let mut ids = [0u32; MAX_CPUS];
    let mut count = 0;
    for entry in madt.get().entries() {
        let (id, flags) = match entry {
            MadtEntry::LocalApic(e) => (u32::from(e.apic_id), e.flags),
            MadtEntry::LocalX2Apic(e) => (e.x2apic_id, e.flags),
            _ => continue,
        };
        if flags & (FLAG_ENABLED | FLAG_ONLINE_CAPABLE) != 0
            && count < MAX_CPUS
            && !ids[..count].contains(&id)
        {
            ids[count] = id;
            count += 1;
        }
    }
    Some((ids, count))
}
