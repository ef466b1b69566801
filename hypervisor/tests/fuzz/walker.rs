//! The guest page-table walk behind GDB memory packets (`m`, `M`, `X`) and descriptor-table
//! exits (`guest_paging::walker`): hostile tables (random entries, loops, huge frames) and any
//! address, canonical or not, end in a mapping or an error, never a panic; every table read
//! is 8-byte aligned inside 52-bit physical space; mappings are consistent.

use proptest::prelude::*;
use rampart_hypervisor::internals::walker::{
    is_canonical, translate, Mapping, PhysicalMemory, WalkError, ADDRESS_MASK, CR4_LA57,
    PTE_PAGE_SIZE, PTE_PRESENT,
};
use std::cell::RefCell;
use std::collections::HashMap;

const PAGE_4K: u64 = 4096;

/// Guest memory: a few random entries; everything else reads as `background`; reads at
/// `hole` pages fail like hypervisor memory.
struct FakeMemory {
    entries: HashMap<u64, u64>,
    background: u64,
    hole: u64,
    reads: RefCell<Vec<u64>>,
}

impl PhysicalMemory for FakeMemory {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        self.reads.borrow_mut().push(gpa);
        if gpa & !(PAGE_4K - 1) == self.hole {
            return Err(WalkError::HypervisorMemory(gpa));
        }
        Ok(*self.entries.get(&gpa).unwrap_or(&self.background))
    }
}

/// Page-table entries: present or not, large or not, pointing at a few tables or anywhere.
fn entry() -> impl Strategy<Value = u64> {
    let frame = prop_oneof![
        3 => (0u64..4).prop_map(|t| t * PAGE_4K),
        1 => any::<u64>(),
    ];
    (frame, any::<bool>(), any::<bool>(), any::<u8>()).prop_map(|(frame, present, large, low)| {
        let mut e = (frame & ADDRESS_MASK) | u64::from(low) & 0x7f;
        if present {
            e |= PTE_PRESENT;
        }
        if large {
            e |= PTE_PAGE_SIZE;
        }
        e
    })
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0x0000_8000_0000_0000),
        Just(0xffff_7fff_ffff_ffff),
        Just(0xffff_8000_0000_0000),
        Just(u64::MAX),
        0u64..0x10_0000,
    ]
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn hostile_tables_and_addresses(
        entries in proptest::collection::vec((0u64..4, 0u64..512, entry()), 0..64),
        background in entry(),
        hole in prop_oneof![Just(u64::MAX), (0u64..4).prop_map(|t| t * PAGE_4K)],
        cr3 in prop_oneof![3 => 0u64..4 * PAGE_4K, 1 => any::<u64>()],
        la57 in proptest::bool::weighted(0.05),
        gva in address(),
    ) {
        let memory = FakeMemory {
            entries: entries.into_iter().map(|(t, i, e)| (t * PAGE_4K + i * 8, e)).collect(),
            background,
            hole,
            reads: RefCell::new(Vec::new()),
        };
        let cr4 = if la57 { CR4_LA57 } else { 0 };
        let result = translate(&memory, cr3, cr4, gva);
        for &read in memory.reads.borrow().iter() {
            prop_assert!(read % 8 == 0 && read < 1 << 52, "read at {read:#x}");
        }
        prop_assert!(memory.reads.borrow().len() <= 4);
        if la57 {
            prop_assert_eq!(result, Err(WalkError::FiveLevelPaging));
        } else if !is_canonical(gva) {
            prop_assert_eq!(result, Err(WalkError::NonCanonical(gva)));
            prop_assert!(memory.reads.borrow().is_empty());
        }
        if let Ok(Mapping { gpa, page_size, .. }) = result {
            prop_assert!([PAGE_4K, 2 << 20, 1 << 30].contains(&page_size));
            prop_assert!(gpa < 1 << 52);
            prop_assert_eq!(gpa % page_size, gva % page_size);
            let mapping = result.unwrap();
            let to_end = mapping.bytes_to_page_end();
            prop_assert!((1..=page_size).contains(&to_end));
            // What `gdb::memory` takes per step: at least one byte, never past a 4 KiB page, so
            // a read or write of any length (a hostile `m addr,ffffffff`) always progresses.
            let in_page = (PAGE_4K - gpa % PAGE_4K).min(to_end);
            prop_assert!((1..=PAGE_4K).contains(&in_page));
        }
    }
}
