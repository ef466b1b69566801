//! Host tests of the kernel's own page tables (`kernel_map`).

use super::kernel_map::*;
use super::layout::{
    kernel_stack_bottom, phys_to_virt, KERNEL_STACKS_BASE, KERNEL_STACK_SIZE, KERNEL_STACK_WINDOW,
    KERNEL_VIRT_OFFSET, MAX_KERNEL_STACKS, SPARE_KERNEL_PAGE,
};
use super::page_table::{
    self, ACCESSED, CACHE_DISABLE, DIRTY, GIB, HUGE_PAGE, NO_EXECUTE, PRESENT, WRITABLE,
};
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

/// Every entry the MMU reads to reach `address`, and whether each is a leaf.
fn path(tables: &KernelPageTables, address: u64) -> std::vec::Vec<(u64, bool)> {
    tables
        .walk(address, KERNEL_VIRT_OFFSET)
        .map(|(table, index, level)| {
            let entry = table.0[index];
            (entry, level == 1 || entry & HUGE_PAGE != 0)
        })
        .collect()
}

#[test]
fn present_entries_are_accessed_and_writable_leaves_dirty() {
    let (tables, _) = build();
    for address in [
        BASE,
        BASE + 0x1_0000,
        BASE + 0x1_4000,
        phys_to_virt(0x20_0000),
        phys_to_virt(0xfee0_0000),
    ] {
        for (entry, leaf) in path(&tables, address) {
            assert_ne!(entry & PRESENT, 0, "{address:#x}");
            assert_ne!(entry & ACCESSED, 0, "{address:#x}: {entry:#x}");
            let writable_leaf = leaf && entry & WRITABLE != 0;
            assert_eq!(
                entry & DIRTY != 0,
                writable_leaf,
                "{address:#x}: {entry:#x}"
            );
        }
    }
    let text = tables.leaf(BASE, KERNEL_VIRT_OFFSET).unwrap();
    assert_eq!(
        text & (ACCESSED | DIRTY),
        ACCESSED,
        "read-only leaf not dirty"
    );
}

#[test]
fn every_stack_slot_needs_only_a_leaf_write() {
    let (tables, _) = build();
    let (start, length) = stack_window();
    assert_eq!((start, length), (KERNEL_STACKS_BASE, KERNEL_STACK_WINDOW));
    let pages = (0..MAX_KERNEL_STACKS)
        .flat_map(|slot| {
            let bottom = kernel_stack_bottom(slot);
            (bottom..bottom + KERNEL_STACK_SIZE).step_by(4096)
        })
        .chain([SPARE_KERNEL_PAGE]);
    for page in pages {
        let walk = path(&tables, page);
        assert_eq!(walk.len(), 4, "{page:#x}: the walk reaches a page table");
        assert!(walk[..3].iter().all(|&(e, leaf)| e & PRESENT != 0 && !leaf));
        assert_eq!(walk[3].0, 0, "{page:#x}: no stack page mapped at boot");
        assert!(
            page >= start && page < start + length,
            "{page:#x} in the window"
        );
    }
    // The window's page tables lie wholly inside it: 2 MiB each, all of them in use.
    assert_eq!(STACK_TABLES as u64 * (2 << 20), KERNEL_STACK_WINDOW);
}

#[test]
fn leaf_bits() {
    assert_eq!(leaf_accessed(PRESENT), PRESENT | ACCESSED);
    assert_eq!(
        leaf_accessed(PRESENT | WRITABLE),
        PRESENT | WRITABLE | ACCESSED | DIRTY
    );
}
