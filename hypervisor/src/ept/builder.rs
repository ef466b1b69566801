//! Builds EPT paging structures for an identity map (guest-physical = host-physical), using the
//! largest page the CPU supports wherever a range is uniform (SDM Vol. 3C 29.3.2).

use super::entry::{self, MemoryType, Permissions, ADDRESS_MASK, LARGE_PAGE};

const ENTRIES: usize = 512;
const PAGE_4K: u64 = 1 << 12;

/// Memory that holds paging structures. The hypervisor hands out identity-mapped frames; host
/// tests use a vector.
pub trait TableMemory {
    /// A zeroed 4 KiB table; its physical address, or `None` when out of frames.
    fn allocate(&mut self) -> Option<u64>;
    /// The table at `physical` (one returned by `allocate`).
    fn table(&mut self, physical: u64) -> &mut [u64; ENTRIES];
}

/// Which large pages the CPU's EPT supports (IA32_VMX_EPT_VPID_CAP bits 16 and 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSizes {
    pub large_2m: bool,
    pub huge_1g: bool,
}

/// Why a mapping could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EptError {
    /// No frame left for a paging structure.
    #[error("out of frames for EPT tables")]
    OutOfTables,
    /// Start or length not 4 KiB aligned, or the range runs past 2^48.
    #[error("bad EPT range {start:#x}+{length:#x}")]
    BadRange { start: u64, length: u64 },
}

/// One translation found by [`Ept::translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub host_physical: u64,
    pub permissions: Permissions,
    pub memory_type: Option<MemoryType>,
    pub page_size: u64,
}

/// Size of the region one entry covers at `level` (1 = PT .. 4 = PML4).
const fn entry_span(level: u32) -> u64 {
    PAGE_4K << (9 * (level - 1))
}

const fn index(address: u64, level: u32) -> usize {
    ((address >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// An EPT hierarchy under construction.
pub struct Ept<M: TableMemory> {
    memory: M,
    pml4: u64,
    sizes: PageSizes,
    tables: usize,
}

impl<M: TableMemory> Ept<M> {
    pub fn new(mut memory: M, sizes: PageSizes) -> Result<Self, EptError> {
        let pml4 = memory.allocate().ok_or(EptError::OutOfTables)?;
        Ok(Self {
            memory,
            pml4,
            sizes,
            tables: 1,
        })
    }

    /// Physical address of the PML4 table (for the EPT pointer).
    pub fn pml4(&self) -> u64 {
        self.pml4
    }

    /// Paging structures allocated so far.
    pub fn table_count(&self) -> usize {
        self.tables
    }

    /// Maps `[start, start + length)` to itself with these rights and memory type, replacing
    /// whatever was mapped there (large pages are split where the range covers them partly).
    pub fn map(
        &mut self,
        start: u64,
        length: u64,
        permissions: Permissions,
        memory_type: MemoryType,
    ) -> Result<(), EptError> {
        let aligned = start.is_multiple_of(PAGE_4K) && length.is_multiple_of(PAGE_4K);
        let end = start
            .checked_add(length)
            .filter(|&end| aligned && end <= 1 << 48);
        let end = end.ok_or(EptError::BadRange { start, length })?;
        let attributes = entry::attributes(permissions, memory_type);
        self.map_level(self.pml4, 4, start, end, attributes)
    }

    fn leaf_allowed(&self, level: u32) -> bool {
        match level {
            1 => true,
            2 => self.sizes.large_2m,
            3 => self.sizes.huge_1g,
            _ => false,
        }
    }

    /// Maps `[start, end)`, which lies within `table`'s range, at `level` and below.
    fn map_level(
        &mut self,
        table: u64,
        level: u32,
        start: u64,
        end: u64,
        attributes: u64,
    ) -> Result<(), EptError> {
        let span = entry_span(level);
        let mut address = start;
        while address < end {
            let entry_start = address & !(span - 1);
            let chunk_end = end.min(entry_start + span);
            let slot = index(address, level);
            let whole = address == entry_start && chunk_end == entry_start + span;
            if whole && self.leaf_allowed(level) {
                self.memory.table(table)[slot] = entry::leaf(entry_start, attributes, level);
            } else {
                let next = self.next_table(table, level, address)?;
                self.map_level(next, level - 1, address, chunk_end, attributes)?;
            }
            address = chunk_end;
        }
        Ok(())
    }

    /// The table below the entry for `address`, allocating it, or splitting a large page into
    /// one that maps the same range with the same attributes.
    fn next_table(&mut self, table: u64, level: u32, address: u64) -> Result<u64, EptError> {
        let slot = index(address, level);
        let entry_start = address & !(entry_span(level) - 1);
        let current = self.memory.table(table)[slot];
        let is_leaf = entry::is_present(current) && current & LARGE_PAGE != 0;
        if entry::is_present(current) && !is_leaf {
            return Ok(current & ADDRESS_MASK);
        }
        let next = self.memory.allocate().ok_or(EptError::OutOfTables)?;
        self.tables += 1;
        if is_leaf {
            let attributes = current & !ADDRESS_MASK & !LARGE_PAGE;
            for (i, e) in self.memory.table(next).iter_mut().enumerate() {
                let address = entry_start + i as u64 * entry_span(level - 1);
                *e = entry::leaf(address, attributes, level - 1);
            }
        }
        self.memory.table(table)[slot] = entry::table(next);
        Ok(next)
    }

    /// Walks the tables for `guest_physical`; `None` if it is not mapped.
    pub fn translate(&mut self, guest_physical: u64) -> Option<Translation> {
        let mut table = self.pml4;
        for level in (1..=4).rev() {
            let e = self.memory.table(table)[index(guest_physical, level)];
            if !entry::is_present(e) {
                return None;
            }
            if level == 1 || e & LARGE_PAGE != 0 {
                let page_size = entry_span(level);
                return Some(Translation {
                    host_physical: (e & ADDRESS_MASK & !(page_size - 1))
                        | (guest_physical & (page_size - 1)),
                    permissions: Permissions::from_entry(e),
                    memory_type: MemoryType::from_entry(e),
                    page_size,
                });
            }
            table = e & ADDRESS_MASK;
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tables in a vector, at fake physical addresses starting at 1 GiB.
    pub struct VecTables(pub Vec<[u64; ENTRIES]>, pub usize);

    const FAKE_BASE: u64 = 1 << 30;

    impl TableMemory for VecTables {
        fn allocate(&mut self) -> Option<u64> {
            if self.0.len() >= self.1 {
                return None;
            }
            self.0.push([0; ENTRIES]);
            Some(FAKE_BASE + (self.0.len() as u64 - 1) * PAGE_4K)
        }
        fn table(&mut self, physical: u64) -> &mut [u64; ENTRIES] {
            &mut self.0[((physical - FAKE_BASE) / PAGE_4K) as usize]
        }
    }

    pub fn ept(sizes: PageSizes) -> Ept<VecTables> {
        Ept::new(VecTables(Vec::new(), 4096), sizes).unwrap()
    }

    const ALL_SIZES: PageSizes = PageSizes {
        large_2m: true,
        huge_1g: true,
    };

    #[test]
    fn uniform_gigabyte_uses_one_huge_page() {
        let mut e = ept(ALL_SIZES);
        e.map(0, 1 << 30, Permissions::ALL, MemoryType::WriteBack)
            .unwrap();
        assert_eq!(e.table_count(), 2, "PML4 + PDPT only");
        let t = e.translate(0x1234_5678).unwrap();
        assert_eq!(t.host_physical, 0x1234_5678);
        assert_eq!(t.page_size, 1 << 30);
    }

    #[test]
    fn without_1g_pages_uses_2m_pages() {
        let mut e = ept(PageSizes {
            large_2m: true,
            huge_1g: false,
        });
        e.map(0, 1 << 30, Permissions::ALL, MemoryType::WriteBack)
            .unwrap();
        assert_eq!(e.table_count(), 3, "PML4 + PDPT + PD");
        assert_eq!(e.translate(0x3fff_ffff).unwrap().page_size, 2 << 20);
    }

    #[test]
    fn unaligned_edges_fall_back_to_4k() {
        let mut e = ept(ALL_SIZES);
        e.map(
            0x1000,
            (4 << 20) - 0x1000,
            Permissions::ALL,
            MemoryType::WriteBack,
        )
        .unwrap();
        assert!(e.translate(0).is_none());
        assert_eq!(e.translate(0x1000).unwrap().page_size, 4096);
        assert_eq!(e.translate(0x20_0000).unwrap().page_size, 2 << 20);
        assert!(e.translate(4 << 20).is_none());
    }

    #[test]
    fn remapping_part_of_a_large_page_splits_it() {
        let mut e = ept(ALL_SIZES);
        e.map(0, 1 << 30, Permissions::ALL, MemoryType::WriteBack)
            .unwrap();
        e.map(
            0x40_0000,
            0x1000,
            Permissions::READ_EXECUTE,
            MemoryType::WriteBack,
        )
        .unwrap();
        let t = e.translate(0x40_0000).unwrap();
        assert_eq!(
            (t.permissions, t.page_size),
            (Permissions::READ_EXECUTE, 4096)
        );
        let neighbour = e.translate(0x40_1000).unwrap();
        assert_eq!(
            (neighbour.permissions, neighbour.host_physical),
            (Permissions::ALL, 0x40_1000)
        );
        assert_eq!(e.translate(0x3000_0000).unwrap().page_size, 2 << 20);
    }

    #[test]
    fn bad_ranges_are_rejected() {
        let mut e = ept(ALL_SIZES);
        assert!(e
            .map(0x123, 0x1000, Permissions::ALL, MemoryType::WriteBack)
            .is_err());
        assert!(e
            .map(0, 0x1001, Permissions::ALL, MemoryType::WriteBack)
            .is_err());
        assert!(e
            .map(!0xfff, 0x2000, Permissions::ALL, MemoryType::WriteBack)
            .is_err());
    }

    #[test]
    fn running_out_of_tables_is_an_error_not_a_panic() {
        let mut e = Ept::new(VecTables(Vec::new(), 2), ALL_SIZES).unwrap();
        let r = e.map(0x1000, 0x1000, Permissions::ALL, MemoryType::WriteBack);
        assert_eq!(r, Err(EptError::OutOfTables));
    }
}
