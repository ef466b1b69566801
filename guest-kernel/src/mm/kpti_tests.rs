//! Host tests of the KPTI template (`mm::kpti`).

use super::*;
use crate::mm::layout::{DIRECT_MAP_BASE, KERNEL_VIRT_OFFSET};
use crate::mm::page_table::{NO_EXECUTE, PRESENT, USER, WRITABLE};

const BASE: u64 = KERNEL_VIRT_OFFSET + 0x400_0000;
const TEXT: EntryRange = EntryRange {
    start: BASE + 0x3000,
    end: BASE + 0x4000,
    access: Access::ReadExecute,
};
const DATA: EntryRange = EntryRange {
    start: BASE + 0x20_0000,
    end: BASE + 0x20_5000,
    access: Access::ReadWrite,
};
const STACKS: EntryRange = EntryRange {
    start: BASE + 0x30_0000,
    end: BASE + 0x31_0000,
    access: Access::ReadWrite,
};

fn template() -> std::boxed::Box<TemplateTables> {
    let mut tables = std::boxed::Box::<TemplateTables>::default();
    tables
        .build(&[TEXT, DATA, STACKS], KERNEL_VIRT_OFFSET, true)
        .expect("valid ranges");
    tables
}

#[test]
fn template_maps_the_entry_ranges_with_their_rights_and_nothing_else() {
    let tables = template();
    let leaf = |a| tables.leaf(a, KERNEL_VIRT_OFFSET);
    let bits = PRESENT | WRITABLE | NO_EXECUTE | USER;
    assert_eq!(leaf(TEXT.start) & bits, PRESENT);
    assert_eq!(page_table::entry_address(leaf(TEXT.start)), 0x400_3000);
    assert_eq!(
        leaf(DATA.start + 0x4fff) & bits,
        PRESENT | WRITABLE | NO_EXECUTE
    );
    assert_eq!(leaf(STACKS.end - 1) & bits, PRESENT | WRITABLE | NO_EXECUTE);
    for unmapped in [
        BASE,
        TEXT.start - 1,
        TEXT.end,
        DATA.end,
        STACKS.end,
        BASE + 0x10_0000,
        DIRECT_MAP_BASE,
        DIRECT_MAP_BASE + 0x400_3000,
        0x40_0000,
    ] {
        assert_eq!(leaf(unmapped), 0, "{unmapped:#x} mapped");
    }
    let used: usize = tables.pml4().0.iter().filter(|&&e| e != 0).count();
    assert_eq!(used, 1, "one PML4 entry: the kernel image's");
}

#[test]
fn no_template_page_is_writable_and_executable_or_user() {
    let tables = template();
    for range in [TEXT, DATA, STACKS] {
        for page in (range.start..range.end).step_by(PAGE_SIZE as usize) {
            let entry = tables.leaf(page, KERNEL_VIRT_OFFSET);
            assert!(entry & WRITABLE == 0 || entry & NO_EXECUTE != 0);
            assert_eq!(entry & USER, 0);
        }
    }
}

#[test]
fn bad_ranges_are_refused() {
    let mut tables = std::boxed::Box::<TemplateTables>::default();
    let unaligned = EntryRange {
        start: BASE + 1,
        ..TEXT
    };
    let lower = EntryRange {
        start: 0x1000,
        end: 0x2000,
        access: Access::Read,
    };
    let far = EntryRange {
        start: BASE - GIB,
        end: BASE - GIB + 0x1000,
        access: Access::Read,
    };
    let clash = EntryRange {
        access: Access::ReadWrite,
        ..TEXT
    };
    let offset = KERNEL_VIRT_OFFSET;
    assert_eq!(
        tables.build(&[], offset, true),
        Err(TemplateError::BadRange)
    );
    assert_eq!(
        tables.build(&[unaligned], offset, true),
        Err(TemplateError::BadRange)
    );
    assert_eq!(
        tables.build(&[lower], offset, true),
        Err(TemplateError::BadRange)
    );
    assert_eq!(
        tables.build(&[TEXT, far], offset, true),
        Err(TemplateError::TooSpread)
    );
    let mut fresh = std::boxed::Box::<TemplateTables>::default();
    assert_eq!(
        fresh.build(&[TEXT, clash], offset, true),
        Err(TemplateError::Conflict)
    );
}
