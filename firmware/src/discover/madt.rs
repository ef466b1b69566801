//! The CPUs the ACPI MADT lists (ACPI 6.5 5.2.12), to cross-check MP services: a CPU the MADT
//! names but MP services does not is still started by the hypervisor, so that no CPU is left
//! outside VMX because one source missed it. Parsed with the `acpi` crate.

use acpi::madt::{Madt, MadtEntry};
use rampart_boot_info::MAX_CPUS;

/// MADT Local APIC / x2APIC flags bit 0: enabled; bit 1: online capable (ACPI 6.5 Table 5.24).
const FLAG_ENABLED: u32 = 1 << 0;
const FLAG_ONLINE_CAPABLE: u32 = 1 << 1;

/// APIC IDs of the usable processors in the MADT, or `None` without an RSDP or MADT.
pub fn apic_ids(rsdp: u64) -> Option<([u32; MAX_CPUS], usize)> {
    let tables = super::acpi::tables(rsdp)?;
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
