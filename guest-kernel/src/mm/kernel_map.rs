//! The kernel's own page tables (pure: built in memory, loaded by `arch::paging`): the kernel
//! image at its upper-half address with per-segment permissions (text R-X, rodata R--, data
//! RW- NX, stack guard pages absent), the direct map of all physical memory (2 MiB pages, NX,
//! the high MMIO window uncacheable), the kernel-stack window with all its tables built but no
//! page mapped, and nothing below `layout::KERNEL_PML4_FIRST`: the lower half belongs to
//! processes.
//!
//! Every present entry has its accessed bit set and every writable leaf its dirty bit (SDM Vol.
//! 3A 4.8): once the hypervisor holds these tables read-only in EPT (`pagetables = locked`) the
//! CPU's own A/D writes would be EPT violations. And after boot the kernel writes no entry of
//! these tables but the leaves of the stack window (`STACK_TABLES`).

use super::layout::{DIRECT_MAP_BASE, KERNEL_STACKS_BASE, KERNEL_STACK_WINDOW};
use super::memory_map;
use super::page_table::{
    self, Access, PageTable, ACCESSED, DIRTY, ENTRIES, GIB, LARGE_PAGE_SIZE, PAGE_SIZE, WRITABLE,
};
use core::fmt;
use rampart_boot_info::MemoryRegion;

/// Physical memory the direct map covers at most (one PD per GiB, statically allocated).
pub const MAX_GIB: usize = 64;
/// 2 MiB blocks the kernel image may span (each gets a page table of 4 KiB entries).
pub const MAX_KERNEL_BLOCKS: usize = 4;
/// Physical window that is always device memory: IOAPIC, HPET, LAPIC, flash.
pub const DEVICE_WINDOW: (u64, u64) = (0xfe00_0000, 4 * GIB);
/// The direct map always covers at least the first 4 GiB (the low MMIO window).
pub const MIN_MAPPED: u64 = 4 * GIB;
/// Stack guard pages in the kernel image (left unmapped).
pub const MAX_GUARD_PAGES: usize = 4;
/// Page tables of the stack window (one per 2 MiB), all built at boot.
pub const STACK_TABLES: usize = (KERNEL_STACK_WINDOW / LARGE_PAGE_SIZE) as usize;

const _: () = assert!(KERNEL_STACKS_BASE.is_multiple_of(GIB) && KERNEL_STACK_WINDOW <= GIB);

/// The leaf bits the CPU would otherwise set itself: accessed, and dirty if writable.
pub const fn leaf_accessed(flags: u64) -> u64 {
    match flags & WRITABLE {
        0 => flags | ACCESSED,
        _ => flags | ACCESSED | DIRTY,
    }
}

/// The stack window as `LockKernelMappings` takes it: (linear start, length).
pub const fn stack_window() -> (u64, u64) {
    (KERNEL_STACKS_BASE, KERNEL_STACK_WINDOW)
}

/// The kernel image's segment boundaries (virtual, page aligned) and where it is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    pub text_start: u64,
    pub text_end: u64,
    pub rodata_end: u64,
    pub data_end: u64,
    /// Virtual minus physical address of the image.
    pub virt_offset: u64,
    pub guard_pages: [u64; MAX_GUARD_PAGES],
}

impl KernelImage {
    /// The access a kernel page gets, or `None` for guard pages and addresses outside.
    pub fn access(&self, address: u64) -> Option<Access> {
        let page = address & !(PAGE_SIZE - 1);
        if page != 0 && self.guard_pages.contains(&page) {
            return None;
        }
        match address {
            a if a < self.text_start || a >= self.data_end => None,
            a if a < self.text_end => Some(Access::ReadExecute),
            a if a < self.rodata_end => Some(Access::Read),
            _ => Some(Access::ReadWrite),
        }
    }

    pub fn is_well_formed(&self) -> bool {
        let bounds = [
            self.text_start,
            self.text_end,
            self.rodata_end,
            self.data_end,
        ];
        bounds.iter().all(|bound| bound.is_multiple_of(PAGE_SIZE))
            && self.text_start < self.text_end
            && self.text_end <= self.rodata_end
            && self.rodata_end <= self.data_end
            && self.text_start / GIB == (self.data_end - 1) / GIB
    }
}

/// Why the tables cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    BadImageLayout,
    ImageTooLarge,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadImageLayout => "kernel image segments are not page aligned and ordered",
            Self::ImageTooLarge => "kernel image spans too many 2 MiB blocks",
        })
    }
}

/// What the direct map covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSummary {
    /// End of the direct-mapped physical range.
    pub mapped_top: u64,
    /// RAM above `mapped_top` (not usable by this kernel).
    pub unmapped_ram: u64,
}

/// The kernel's page tables; lives in the kernel image (so `virt_offset` finds its physical
/// address).
#[repr(C, align(4096))]
pub struct KernelPageTables {
    pml4: PageTable,
    direct_pdpt: PageTable,
    directories: [PageTable; MAX_GIB],
    image_pdpt: PageTable,
    image_directory: PageTable,
    image_tables: [PageTable; MAX_KERNEL_BLOCKS],
    stacks_pdpt: PageTable,
    stacks_directory: PageTable,
    stacks_tables: [PageTable; STACK_TABLES],
}

impl KernelPageTables {
    pub const fn new() -> Self {
        Self {
            pml4: PageTable::EMPTY,
            direct_pdpt: PageTable::EMPTY,
            directories: [const { PageTable::EMPTY }; MAX_GIB],
            image_pdpt: PageTable::EMPTY,
            image_directory: PageTable::EMPTY,
            image_tables: [const { PageTable::EMPTY }; MAX_KERNEL_BLOCKS],
            stacks_pdpt: PageTable::EMPTY,
            stacks_directory: PageTable::EMPTY,
            stacks_tables: [const { PageTable::EMPTY }; STACK_TABLES],
        }
    }

    /// The PML4 (virtual address in the image); its upper half is copied into every process.
    pub fn pml4(&self) -> &PageTable {
        &self.pml4
    }

    /// Fills the tables. `virt_offset` of `image` converts table addresses to physical ones.
    pub fn build(
        &mut self,
        image: &KernelImage,
        regions: &[MemoryRegion],
        nx: bool,
    ) -> Result<MapSummary, MapError> {
        if !image.is_well_formed() {
            return Err(MapError::BadImageLayout);
        }
        let phys =
            |table: &PageTable| (core::ptr::from_ref(table) as u64).wrapping_sub(image.virt_offset);
        let table_entry = |table: &PageTable| {
            page_table::entry(phys(table), Access::ReadWrite.flags(false) | ACCESSED)
        };

        let first_block = image.text_start / LARGE_PAGE_SIZE;
        let last_block = (image.data_end - 1) / LARGE_PAGE_SIZE;
        let blocks = usize::try_from(last_block - first_block + 1).unwrap_or(usize::MAX);
        if blocks > MAX_KERNEL_BLOCKS {
            return Err(MapError::ImageTooLarge);
        }
        for (slot, block) in (first_block..=last_block).enumerate() {
            let base = block * LARGE_PAGE_SIZE;
            for (i, pte) in self.image_tables[slot].0.iter_mut().enumerate() {
                let page = base + i as u64 * PAGE_SIZE;
                *pte = match image.access(page) {
                    Some(access) => page_table::entry(
                        page.wrapping_sub(image.virt_offset),
                        leaf_accessed(access.flags(nx)),
                    ),
                    None => 0,
                };
            }
            let index = page_table::index(base, 2);
            self.image_directory.0[index] = table_entry(&self.image_tables[slot]);
        }
        self.image_pdpt.0[page_table::index(image.text_start, 3)] =
            table_entry(&self.image_directory);
        self.pml4.0[page_table::index(image.text_start, 4)] = table_entry(&self.image_pdpt);

        let ram_top = memory_map::Summary::of(regions).ram_top;
        let wanted_top = ram_top.max(MIN_MAPPED).next_multiple_of(GIB);
        let mapped_top = wanted_top.min(MAX_GIB as u64 * GIB);
        for gib in 0..(mapped_top / GIB) as usize {
            for i in 0..ENTRIES {
                let base = gib as u64 * GIB + i as u64 * LARGE_PAGE_SIZE;
                let access = large_page_access(regions, base);
                let flags = leaf_accessed(access.flags(nx)) | page_table::HUGE_PAGE;
                self.directories[gib].0[i] = page_table::entry(base, flags);
            }
            self.direct_pdpt.0[gib] = table_entry(&self.directories[gib]);
        }
        self.pml4.0[page_table::index(DIRECT_MAP_BASE, 4)] = table_entry(&self.direct_pdpt);
        for (slot, table) in self.stacks_tables.iter().enumerate() {
            let base = KERNEL_STACKS_BASE + slot as u64 * LARGE_PAGE_SIZE;
            self.stacks_directory.0[page_table::index(base, 2)] = table_entry(table);
        }
        self.stacks_pdpt.0[page_table::index(KERNEL_STACKS_BASE, 3)] =
            table_entry(&self.stacks_directory);
        self.pml4.0[page_table::index(KERNEL_STACKS_BASE, 4)] = table_entry(&self.stacks_pdpt);
        Ok(MapSummary {
            mapped_top,
            unmapped_ram: ram_top.saturating_sub(mapped_top),
        })
    }

    /// The leaf entry for a virtual `address` (kernel image or direct map), for checks and
    /// tests: walks the tables like the MMU, resolving physical addresses among its own.
    pub fn leaf(&self, address: u64, virt_offset: u64) -> Option<u64> {
        let (table, index, level) = self.walk(address, virt_offset).last()?;
        let entry = table.0[index];
        let huge = entry & (page_table::PRESENT | page_table::HUGE_PAGE)
            == page_table::PRESENT | page_table::HUGE_PAGE;
        (level == 1 || (level == 2 && huge)).then_some(entry)
    }

    /// The (table, index, level) of every entry the MMU reads to translate `address`, top
    /// down, as far as the walk goes (a non-present entry or a leaf ends it).
    pub fn walk(
        &self,
        address: u64,
        virt_offset: u64,
    ) -> impl Iterator<Item = (&PageTable, usize, u32)> {
        let mut next = Some(&self.pml4);
        [4, 3, 2, 1].into_iter().map_while(move |level| {
            let table = next.take()?;
            let index = page_table::index(address, level);
            let entry = table.0[index];
            let leaf = level == 1 || (level == 2 && entry & page_table::HUGE_PAGE != 0);
            if entry & page_table::PRESENT != 0 && !leaf {
                let wanted = page_table::entry_address(entry);
                next = self
                    .all_tables()
                    .find(|t| (core::ptr::from_ref(*t) as u64).wrapping_sub(virt_offset) == wanted);
            }
            Some((table, index, level))
        })
    }

    fn all_tables(&self) -> impl Iterator<Item = &PageTable> {
        [
            &self.direct_pdpt,
            &self.image_pdpt,
            &self.image_directory,
            &self.stacks_pdpt,
            &self.stacks_directory,
        ]
        .into_iter()
        .chain(self.directories.iter())
        .chain(self.image_tables.iter())
        .chain(self.stacks_tables.iter())
    }
}

impl Default for KernelPageTables {
    fn default() -> Self {
        Self::new()
    }
}

/// Write-back RAM unless the 2 MiB block is in the device window or holds no RAM at all.
fn large_page_access(regions: &[MemoryRegion], base: u64) -> Access {
    let in_device_window = base >= DEVICE_WINDOW.0 && base < DEVICE_WINDOW.1;
    if in_device_window || !memory_map::overlaps_ram(regions, base, LARGE_PAGE_SIZE) {
        Access::Device
    } else {
        Access::ReadWrite
    }
}
