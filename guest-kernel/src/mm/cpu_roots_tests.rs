use super::*;
use crate::mm::address_space::{self, fake::FakeMemory};
use crate::mm::layout::{USER_STACK_SIZE, USER_STACK_TOP};

const FLAGS: u64 = PRESENT | USER | WRITABLE;

fn kernel_entries() -> [u64; ENTRIES] {
    let mut entries = [0; ENTRIES];
    entries[256] = 0xaaa_0023;
    entries[511] = 0xbbb_0023;
    entries
}

/// A process with a program page, a heap page 1 GiB up and a stack page.
fn process(memory: &mut FakeMemory, base: u64) -> (u64, [u64; 3]) {
    let root = memory.allocate().unwrap();
    let pages = [base, base + (1 << 30), USER_STACK_TOP - USER_STACK_SIZE];
    for page in pages {
        let frame = memory.allocate().unwrap();
        address_space::map(memory, root, page, frame, FLAGS).unwrap();
    }
    (root, pages)
}

/// The leaf `virt` reaches through the CPU's kernel-mode root.
fn through(memory: &FakeMemory, cpu: &CpuRoots, virt: u64) -> Option<u64> {
    address_space::leaf(memory, cpu.kernel, virt)
}

#[test]
fn roots_share_the_upper_halves_and_point_at_the_cpu_tables() {
    let mut memory = FakeMemory::default();
    let mut template = [0; ENTRIES];
    template[511] = 0xccc_0023;
    let cpu = build(&mut memory, &kernel_entries(), Some(&template)).unwrap();
    assert_eq!(memory.read(cpu.kernel, 511), 0xbbb_0023);
    assert_eq!(memory.read(cpu.user, 511), 0xccc_0023);
    assert_eq!(memory.read(cpu.user, 256), 0);
    for (n, &slot) in USER_SLOTS.iter().enumerate() {
        for root in [cpu.kernel, cpu.user] {
            let entry = memory.read(root, slot);
            assert_eq!(page_table::entry_address(entry), cpu.tables[n]);
            assert_eq!(entry & (ACCESSED | PRESENT), ACCESSED | PRESENT);
        }
    }
    let no_kpti = build(&mut memory, &kernel_entries(), None).unwrap();
    assert_eq!(no_kpti.user, 0);
    assert!(!memory.frames.contains_key(&0) && memory.frames.len() == 4 + 3);
    let mut tight = FakeMemory {
        limit: Some(2),
        ..Default::default()
    };
    assert!(build(&mut tight, &kernel_entries(), None).is_none());
    assert!(tight.frames.is_empty(), "a failed build frees what it took");
}

#[test]
fn a_switch_copies_the_incoming_entries_and_clears_the_outgoing_ones() {
    let mut memory = FakeMemory::default();
    let cpu = build(&mut memory, &kernel_entries(), None).unwrap();
    let (a, a_pages) = process(&mut memory, 0x40_0000);
    let (b, b_pages) = process(&mut memory, 0x80_0000_0000 - (1 << 31));
    let mut loaded = Loaded::default();
    let used_a = scan(&memory, a);
    assert_eq!(load(&mut memory, &cpu, &mut loaded, a, &used_a), 3);
    for page in a_pages {
        assert_eq!(
            through(&memory, &cpu, page),
            address_space::leaf(&memory, a, page)
        );
    }
    // A to B: A's program and heap entries go, B's arrive; the stack entry (both use it) is
    // rewritten once.
    let used_b = scan(&memory, b);
    let written = load(&mut memory, &cpu, &mut loaded, b, &used_b);
    assert_eq!(written, 5);
    for page in b_pages {
        assert_eq!(
            through(&memory, &cpu, page),
            address_space::leaf(&memory, b, page)
        );
    }
    for page in &a_pages[..2] {
        assert_eq!(through(&memory, &cpu, *page), None, "{page:#x} left over");
    }
    // To nothing (idle): every entry cleared.
    load(&mut memory, &cpu, &mut loaded, 0, &Used::default());
    for page in a_pages.iter().chain(&b_pages) {
        assert_eq!(through(&memory, &cpu, *page), None);
    }
    for &table in &cpu.tables {
        assert!((0..ENTRIES).all(|i| memory.read(table, i) == 0));
    }
}

#[test]
fn a_new_directory_entry_of_the_running_process_is_synced() {
    let mut memory = FakeMemory::default();
    let cpu = build(&mut memory, &kernel_entries(), None).unwrap();
    let (a, _) = process(&mut memory, 0x40_0000);
    let mut loaded = Loaded::default();
    let used = scan(&memory, a);
    load(&mut memory, &cpu, &mut loaded, a, &used);
    // Same directory entry: nothing to copy.
    let frame = memory.allocate().unwrap();
    address_space::map(&mut memory, a, 0x40_1000, frame, FLAGS).unwrap();
    assert!(!sync(&mut memory, &cpu, &mut loaded, 0x40_1000));
    assert!(through(&memory, &cpu, 0x40_1000).is_some());
    // A heap page 5 GiB up needs a new directory entry.
    let far = 5 << 30;
    address_space::map(&mut memory, a, far, frame, FLAGS).unwrap();
    assert_eq!(through(&memory, &cpu, far), None);
    assert!(sync(&mut memory, &cpu, &mut loaded, far));
    assert!(through(&memory, &cpu, far).is_some());
    assert_eq!(
        loaded.used,
        scan(&memory, a),
        "the loaded set tracks the process"
    );
    assert!(
        !sync(&mut memory, &cpu, &mut loaded, 0x10_0000_0000_0000 + far),
        "not a slot"
    );
}

#[test]
fn slots_cover_the_user_layout() {
    assert_eq!(slot_of(0x40_0000), Some(0));
    assert_eq!(slot_of(LOW_USER_TOP - 1), Some(0));
    assert_eq!(slot_of(LOW_USER_TOP), None);
    assert_eq!(slot_of(USER_STACK_TOP - USER_STACK_SIZE), Some(1));
    assert_eq!(slot_of(HIGH_USER_BASE), Some(1));
    assert_eq!(slot_of(HIGH_USER_BASE - 1), None);
}
