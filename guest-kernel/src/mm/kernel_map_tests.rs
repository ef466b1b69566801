//! Host tests of the kernel's own page tables (`kernel_map`).

use super::kernel_map::*;
use super::layout::{phys_to_virt, KERNEL_VIRT_OFFSET};
use super::page_table::{self, CACHE_DISABLE, GIB, HUGE_PAGE, NO_EXECUTE, PRESENT, WRITABLE};
use rampart_boot_info::{MemoryKind, MemoryRegion};

const BASE: u64 = KERNEL_VIRT_OFFSET + 0x400_0000;
const IMAGE: KernelImage = KernelImage {
    text_start: BASE,
    text_end: BASE + 0x1_0000,
    rodata_end: BASE + 0x1_4000,
    data_end: BASE + 0x8_0000,
    virt_offset: KERNEL_VIRT_OFFSET,
    guard_pages: [BASE + 0x2_0000, 0, 0, 0],
};

fn build() -> (std::boxed::Box<KernelPageTables>, MapSummary) {
    let regions = [
        MemoryRegion::new(0, 0x2000_0000, MemoryKind::Usable),
        MemoryRegion::new(0xfec0_0000, 0x1000, MemoryKind::Mmio),
    ];
    let mut tables = std::boxed::Box::<KernelPageTables>::default();
    let summary = tables.build(&IMAGE, &regions, true).expect("valid layout");
    (tables, summary)
}

#[test]
fn kernel_segments_get_their_permissions_at_their_virtual_address() {
    let (tables, _) = build();
    let leaf = |a| tables.leaf(a, KERNEL_VIRT_OFFSET).expect("mapped");
    let bits = PRESENT | WRITABLE | NO_EXECUTE;
    assert_eq!(leaf(BASE) & bits, PRESENT);
    assert_eq!(leaf(BASE + 0x1_0000) & bits, PRESENT | NO_EXECUTE);
    assert_eq!(leaf(BASE + 0x1_4000) & bits, bits);
    assert_eq!(leaf(BASE + 0x2_0000), 0, "guard page is not present");
    assert_eq!(page_table::entry_address(leaf(BASE + 0x1_4123)), 0x401_4000);
}

#[test]
fn direct_map_is_nx_and_devices_uncacheable() {
    let (tables, summary) = build();
    assert_eq!(summary.mapped_top, 4 * GIB);
    let leaf = |a| {
        tables
            .leaf(phys_to_virt(a), KERNEL_VIRT_OFFSET)
            .expect("mapped")
    };
    let ram = leaf(0x20_0000);
    assert_eq!(
        ram & (HUGE_PAGE | WRITABLE | NO_EXECUTE),
        HUGE_PAGE | WRITABLE | NO_EXECUTE
    );
    assert_eq!(page_table::entry_address(ram), 0x20_0000);
    assert_ne!(leaf(0xfee0_0000) & CACHE_DISABLE, 0);
    assert_eq!(ram & CACHE_DISABLE, 0);
}

#[test]
fn lower_half_is_empty() {
    let (tables, _) = build();
    assert!(tables.pml4().0[..256].iter().all(|&e| e == 0));
    assert_eq!(tables.leaf(0x400_0000, KERNEL_VIRT_OFFSET), None);
}
