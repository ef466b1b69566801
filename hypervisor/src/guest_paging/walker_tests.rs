use super::*;
use std::collections::BTreeMap;

/// Guest memory as a map of 8-byte words, with a refused range and an EPT hole.
struct FakeMemory {
    words: BTreeMap<u64, u64>,
    hypervisor: core::ops::Range<u64>,
    ept_hole: core::ops::Range<u64>,
}

impl PhysicalMemory for FakeMemory {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        if self.hypervisor.contains(&gpa) {
            return Err(WalkError::HypervisorMemory(gpa));
        }
        if self.ept_hole.contains(&gpa) {
            return Err(WalkError::NotInEpt(gpa));
        }
        Ok(self.words.get(&gpa).copied().unwrap_or(0))
    }
}

const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;
const RW: u64 = PTE_PRESENT | PTE_WRITABLE;

/// Maps 0xffff_8000_0000_0000 + ... (PML4 index 256) and low memory (index 0).
fn memory() -> FakeMemory {
    let mut words = BTreeMap::new();
    words.insert(PML4, PDPT | RW | PTE_USER);
    words.insert(PML4 + 256 * 8, PDPT | RW);
    // PDPT[0] -> PD; PDPT[1] = 1 GiB page at 0x4000_0000 (read-only).
    words.insert(PDPT, PD | RW | PTE_USER);
    words.insert(PDPT + 8, 0x4000_0000 | PTE_PRESENT | PTE_PAGE_SIZE);
    // PD[0] -> PT; PD[1] = 2 MiB page at 0x20_0000.
    words.insert(PD, PT | RW | PTE_USER);
    words.insert(PD + 8, 0x20_0000 | RW | PTE_PAGE_SIZE);
    // PT[5] = 4 KiB page at 0x7000; PT[6] points into the hypervisor; PT[7] not present.
    words.insert(PT + 5 * 8, 0x7000 | RW | PTE_USER);
    // PD[2] -> a table inside the hypervisor range; PD[3] -> a table in an EPT hole.
    words.insert(PD + 2 * 8, 0x90_0000 | RW);
    words.insert(PD + 3 * 8, 0xa0_0000 | RW);
    FakeMemory {
        words,
        hypervisor: 0x90_0000..0x98_0000,
        ept_hole: 0xa0_0000..0xa0_1000,
    }
}

#[test]
fn four_kib_page() {
    let m = translate(&memory(), PML4 | 0x18, 0, 0x5123).unwrap();
    assert_eq!(m.gpa, 0x7123);
    assert_eq!(m.page_size, 4096);
    assert!(m.writable && m.user);
    assert_eq!(m.bytes_to_page_end(), 0x1000 - 0x123);
}

#[test]
fn two_mib_page() {
    let m = translate(&memory(), PML4, 0, 0x2f_fff0).unwrap();
    assert_eq!((m.gpa, m.page_size), (0x2f_fff0, 2 << 20));
    assert!(!m.user, "user bit is ANDed over all levels");
}

#[test]
fn one_gib_page_and_upper_half() {
    let m = translate(&memory(), PML4, 0, 0xffff_8000_4000_1234).unwrap();
    assert_eq!((m.gpa, m.page_size), (0x4000_1234, 1 << 30));
    assert!(!m.writable);
}

#[test]
fn not_present_names_the_level() {
    let mem = memory();
    assert_eq!(
        translate(&mem, PML4, 0, 0x7000),
        Err(WalkError::NotPresent { level: 1 })
    );
    assert_eq!(
        translate(&mem, PML4, 0, 0x8000_0000),
        Err(WalkError::NotPresent { level: 3 })
    );
    assert_eq!(
        translate(&mem, PML4, 0, 1 << 39),
        Err(WalkError::NotPresent { level: 4 })
    );
}

#[test]
fn non_canonical_and_la57_are_refused() {
    let mem = memory();
    assert_eq!(
        translate(&mem, PML4, 0, 0x0000_8000_0000_0000),
        Err(WalkError::NonCanonical(0x0000_8000_0000_0000))
    );
    assert!(is_canonical(0xffff_8000_0000_0000));
    assert!(!is_canonical(0xfff0_0000_0000_0000));
    assert_eq!(
        translate(&mem, PML4, CR4_LA57, 0x1000),
        Err(WalkError::FiveLevelPaging)
    );
}

#[test]
fn tables_in_hypervisor_memory_or_outside_ept_are_refused() {
    let mem = memory();
    assert_eq!(
        translate(&mem, PML4, 0, 0x40_0000),
        Err(WalkError::HypervisorMemory(0x90_0000))
    );
    assert_eq!(
        translate(&mem, PML4, 0, 0x60_0000),
        Err(WalkError::NotInEpt(0xa0_0000))
    );
    assert_eq!(
        translate(&mem, 0x90_0000, 0, 0),
        Err(WalkError::HypervisorMemory(0x90_0000))
    );
}
