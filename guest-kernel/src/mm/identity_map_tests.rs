//! Host tests of the kernel identity map (`identity_map`).

use super::identity_map::*;
use super::page_table::{
    self, CACHE_DISABLE, GIB, HUGE_PAGE, NO_EXECUTE, PAGE_SIZE, PRESENT, WRITABLE,
};
use rampart_boot_info::{MemoryKind, MemoryRegion};

const IMAGE: KernelImage = KernelImage {
    text_start: 0x100_0000,
    text_end: 0x101_0000,
    rodata_end: 0x101_4000,
    data_end: 0x108_0000,
    guard_pages: [0x102_0000, 0, 0, 0],
};

fn build(regions: &[MemoryRegion]) -> (std::boxed::Box<KernelPageTables>, MapSummary) {
    let mut tables = std::boxed::Box::<KernelPageTables>::default();
    let summary = tables.build(&IMAGE, regions, true).expect("valid layout");
    (tables, summary)
}

fn ram_512_mib() -> [MemoryRegion; 2] {
    [
        MemoryRegion::new(0, 0x2000_0000, MemoryKind::Usable),
        MemoryRegion::new(0xfec0_0000, 0x1000, MemoryKind::Mmio),
    ]
}

#[test]
fn kernel_segments_get_their_permissions() {
    let (tables, _) = build(&ram_512_mib());
    let leaf = |a| tables.leaf(a).expect("mapped");
    assert_eq!(
        leaf(0x100_0000) & (PRESENT | WRITABLE | NO_EXECUTE),
        PRESENT
    );
    assert_eq!(
        leaf(0x101_0000) & (PRESENT | WRITABLE | NO_EXECUTE),
        PRESENT | NO_EXECUTE
    );
    assert_eq!(
        leaf(0x101_4000) & (WRITABLE | NO_EXECUTE),
        WRITABLE | NO_EXECUTE
    );
    assert_eq!(leaf(0x102_0000), 0, "guard page is not present");
    assert_eq!(
        leaf(0x108_0000) & (WRITABLE | NO_EXECUTE),
        WRITABLE | NO_EXECUTE
    );
    assert_eq!(page_table::entry_address(leaf(0x101_4123)), 0x101_4000);
}

#[test]
fn ram_is_large_write_back_and_devices_uncacheable() {
    let (tables, summary) = build(&ram_512_mib());
    assert_eq!(
        summary,
        MapSummary {
            mapped_top: 4 * GIB,
            unmapped_ram: 0
        }
    );
    let ram = tables.leaf(0x20_0000).expect("mapped");
    assert_eq!(
        ram & (HUGE_PAGE | CACHE_DISABLE | NO_EXECUTE),
        HUGE_PAGE | NO_EXECUTE
    );
    for device in [0x4000_0000, 0xfee0_0000, 0xffe0_0000] {
        assert_ne!(
            tables.leaf(device).expect("mapped") & CACHE_DISABLE,
            0,
            "{device:#x}"
        );
    }
    assert_eq!(tables.leaf(4 * GIB), None);
}

#[test]
fn ram_above_4_gib_is_mapped_up_to_the_limit() {
    let high = [MemoryRegion::new(
        0x1_0000_0000,
        2 * GIB + 4096,
        MemoryKind::Usable,
    )];
    assert_eq!(build(&high).1.mapped_top, 7 * GIB);
    let huge = [MemoryRegion::new(
        0x1_0000_0000,
        100 * GIB,
        MemoryKind::Usable,
    )];
    let summary = build(&huge).1;
    assert_eq!(summary.mapped_top, MAX_GIB as u64 * GIB);
    assert_eq!(summary.unmapped_ram, 104 * GIB - MAX_GIB as u64 * GIB);
}

#[test]
fn no_mapped_page_is_writable_and_executable() {
    let (tables, _) = build(&ram_512_mib());
    let step = PAGE_SIZE * 3;
    for address in (0..0x400_0000).step_by(step as usize) {
        if let Some(leaf) = tables.leaf(address).filter(|l| l & PRESENT != 0) {
            assert!(
                leaf & WRITABLE == 0 || leaf & NO_EXECUTE != 0,
                "{address:#x}"
            );
        }
    }
}

#[test]
fn bad_layouts_are_refused() {
    let mut tables = std::boxed::Box::<KernelPageTables>::default();
    let unaligned = KernelImage {
        text_end: 0x100_0800,
        ..IMAGE
    };
    assert_eq!(
        tables.build(&unaligned, &[], true),
        Err(MapError::BadImageLayout)
    );
    let huge = KernelImage {
        data_end: 0x200_0000,
        ..IMAGE
    };
    assert_eq!(tables.build(&huge, &[], true), Err(MapError::ImageTooLarge));
}
