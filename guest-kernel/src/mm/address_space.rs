//! Page-table hierarchies: a process's private root (lower half only: no CPU loads it, a CPU
//! copies its directory entries into its own tables, `mm::cpu_roots`) and the kernel's own
//! tables. Pure: physical memory is reached through [`PhysMemory`] (the direct map in the
//! kernel, a map in tests).

use super::layout::KERNEL_PML4_FIRST;
use super::page_table::{self, ACCESSED, ENTRIES, HUGE_PAGE, PAGE_SIZE, PRESENT, USER, WRITABLE};

/// Physical frames and the page tables in them.
pub trait PhysMemory {
    /// A zeroed 4 KiB frame, or `None` when memory is exhausted.
    fn allocate(&mut self) -> Option<u64>;
    /// Returns a frame obtained from [`PhysMemory::allocate`].
    fn free(&mut self, frame: u64);
    /// Returns a frame that leaf `entry` mapped (an executable one may need its rights reset
    /// first).
    fn free_leaf(&mut self, frame: u64, _entry: u64) {
        self.free(frame);
    }
    /// Entry `index` of the page table in `frame`.
    fn read(&self, frame: u64, index: usize) -> u64;
    /// Sets entry `index` of the page table in `frame`.
    fn write(&mut self, frame: u64, index: usize, value: u64);
}

/// Out of frames while mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// A new PML4 sharing the kernel's upper-half entries (`kernel_entries[256..]`; a process's
/// private root takes none).
pub fn new_root(memory: &mut impl PhysMemory, kernel_entries: &[u64; ENTRIES]) -> Option<u64> {
    let root = memory.allocate()?;
    for (index, &entry) in kernel_entries.iter().enumerate().skip(KERNEL_PML4_FIRST) {
        memory.write(root, index, entry);
    }
    Some(root)
}

/// Maps the page `virt` to `frame` with leaf `flags`; intermediate tables are user accessible
/// and writable (the leaf decides), with the accessed bit set so the CPU need not write it
/// (SDM Vol. 3A 4.8). Replaces an existing leaf.
pub fn map(
    memory: &mut impl PhysMemory,
    root: u64,
    virt: u64,
    frame: u64,
    flags: u64,
) -> Result<(), OutOfMemory> {
    let mut table = root;
    for level in [4, 3, 2] {
        let index = page_table::index(virt, level);
        let entry = memory.read(table, index);
        table = if entry & PRESENT != 0 {
            page_table::entry_address(entry)
        } else {
            let next = memory.allocate().ok_or(OutOfMemory)?;
            let entry = page_table::entry(next, PRESENT | WRITABLE | USER | ACCESSED);
            memory.write(table, index, entry);
            next
        };
    }
    memory.write(
        table,
        page_table::index(virt, 1),
        page_table::entry(frame, flags),
    );
    Ok(())
}

/// The leaf entry mapping `virt` (4 KiB or 2 MiB), or `None` if nothing maps it.
pub fn leaf(memory: &impl PhysMemory, root: u64, virt: u64) -> Option<u64> {
    let mut table = root;
    for level in [4, 3, 2, 1] {
        let entry = memory.read(table, page_table::index(virt, level));
        if entry & PRESENT == 0 {
            return None;
        }
        if level == 1 || (level == 2 && entry & HUGE_PAGE != 0) {
            return Some(entry);
        }
        table = page_table::entry_address(entry);
    }
    None
}

/// Removes the 4 KiB mapping of `virt`; returns the frame it mapped. Tables stay.
pub fn unmap(memory: &mut impl PhysMemory, root: u64, virt: u64) -> Option<u64> {
    let mut table = root;
    for level in [4, 3, 2] {
        let entry = memory.read(table, page_table::index(virt, level));
        if entry & PRESENT == 0 || entry & HUGE_PAGE != 0 {
            return None;
        }
        table = page_table::entry_address(entry);
    }
    let index = page_table::index(virt, 1);
    let entry = memory.read(table, index);
    memory.write(table, index, 0);
    (entry & PRESENT != 0).then(|| page_table::entry_address(entry))
}

/// Frees every page and table of the lower half, then the root. Returns the frames freed.
pub fn destroy(memory: &mut impl PhysMemory, root: u64) -> u64 {
    let mut freed = 0;
    for index in 0..KERNEL_PML4_FIRST {
        let entry = memory.read(root, index);
        if entry & PRESENT != 0 {
            freed += free_table(memory, page_table::entry_address(entry), 3);
        }
    }
    memory.free(root);
    freed + 1
}

fn free_table(memory: &mut impl PhysMemory, table: u64, level: u32) -> u64 {
    let mut freed = 0;
    for index in 0..ENTRIES {
        let entry = memory.read(table, index);
        if entry & PRESENT == 0 {
            continue;
        }
        let target = page_table::entry_address(entry);
        if level == 1 {
            memory.free_leaf(target, entry);
            freed += 1;
        } else {
            freed += free_table(memory, target, level - 1);
        }
    }
    memory.free(table);
    freed + 1
}

/// Pages `[start, end)` rounded out to whole pages.
pub fn pages(start: u64, end: u64) -> impl Iterator<Item = u64> {
    let first = start & !(PAGE_SIZE - 1);
    let last = end.next_multiple_of(PAGE_SIZE);
    (first..last).step_by(PAGE_SIZE as usize)
}

#[cfg(test)]
pub mod fake {
    //! A fake physical memory for host tests.
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    pub struct FakeMemory {
        pub frames: BTreeMap<u64, std::vec::Vec<u64>>,
        pub next: u64,
        pub limit: Option<usize>,
    }

    impl PhysMemory for FakeMemory {
        fn allocate(&mut self) -> Option<u64> {
            if self.limit.is_some_and(|l| self.frames.len() >= l) {
                return None;
            }
            self.next += PAGE_SIZE;
            self.frames.insert(self.next, std::vec![0; ENTRIES]);
            Some(self.next)
        }
        fn free(&mut self, frame: u64) {
            assert!(
                self.frames.remove(&frame).is_some(),
                "double free {frame:#x}"
            );
        }
        fn read(&self, frame: u64, index: usize) -> u64 {
            self.frames[&frame][index]
        }
        fn write(&mut self, frame: u64, index: usize, value: u64) {
            self.frames.get_mut(&frame).expect("allocated")[index] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeMemory;
    use super::*;

    #[test]
    fn map_walk_and_destroy_free_everything() {
        let mut memory = FakeMemory::default();
        let mut kernel = [0; ENTRIES];
        kernel[511] = 0xdead_0003;
        let root = new_root(&mut memory, &kernel).unwrap();
        assert_eq!(memory.read(root, 511), 0xdead_0003);
        let frame = memory.allocate().unwrap();
        map(&mut memory, root, 0x40_0000, frame, PRESENT | USER).unwrap();
        let other = memory.allocate().unwrap();
        map(
            &mut memory,
            root,
            0x7fff_ffff_e000,
            other,
            PRESENT | USER | WRITABLE,
        )
        .unwrap();
        assert_eq!(leaf(&memory, root, 0x40_0123), Some(frame | PRESENT | USER));
        assert_eq!(leaf(&memory, root, 0x40_1000), None);
        let spare = memory.allocate().unwrap();
        map(&mut memory, root, 0x50_0000, spare, PRESENT | USER).unwrap();
        assert_eq!(unmap(&mut memory, root, 0x50_0000), Some(spare));
        assert_eq!(unmap(&mut memory, root, 0x50_0000), None);
        memory.free(spare);
        let used = memory.frames.len() as u64;
        assert_eq!(destroy(&mut memory, root), used);
        assert!(memory.frames.is_empty());
    }

    #[test]
    fn intermediate_entries_carry_the_accessed_bit() {
        let mut memory = FakeMemory::default();
        let root = new_root(&mut memory, &[0; ENTRIES]).unwrap();
        let frame = memory.allocate().unwrap();
        map(&mut memory, root, 0x40_0000, frame, PRESENT | USER).unwrap();
        map(&mut memory, root, 0x7fff_ffff_e000, frame, PRESENT | USER).unwrap();
        for index in [0, 255] {
            let entry = memory.read(root, index);
            assert_eq!(entry & (PRESENT | ACCESSED), PRESENT | ACCESSED);
            let pdpt = page_table::entry_address(entry);
            let next = (0..ENTRIES).map(|i| memory.read(pdpt, i)).find(|e| *e != 0);
            assert_ne!(next.unwrap() & ACCESSED, 0);
        }
    }

    #[test]
    fn out_of_memory_is_an_error() {
        let mut memory = FakeMemory {
            limit: Some(2),
            ..Default::default()
        };
        let root = new_root(&mut memory, &[0; ENTRIES]).unwrap();
        assert_eq!(
            map(&mut memory, root, 0x40_0000, 0x1000, PRESENT),
            Err(OutOfMemory)
        );
    }
}
