//! The kernel's first address space: all of physical memory identity mapped with 2 MiB pages
//! (RAM write-back, device ranges uncacheable, nothing executable), except the kernel image,
//! which gets 4 KiB pages so that text is R-X, rodata R-- and data RW-, with its stack guard
//! pages left unmapped.

use super::memory_map;
use super::page_table::{self, Access, PageTable, ENTRIES, GIB, LARGE_PAGE_SIZE, PAGE_SIZE};
use core::fmt;
use rampart_boot_info::MemoryRegion;

/// Physical memory the map can cover, in GiB (one page directory per GiB).
pub const MAX_GIB: usize = 64;
/// 2 MiB blocks of kernel image the map can split into 4 KiB pages.
pub const MAX_KERNEL_BLOCKS: usize = 4;
/// The architectural MMIO window below 4 GiB (LAPIC, IOAPIC, HPET, flash): always uncacheable.
pub const DEVICE_WINDOW: (u64, u64) = (0xfe00_0000, 4 * GIB);
/// The map always covers at least 0..4 GiB, RAM or not, so every 32-bit device is reachable.
pub const MIN_MAPPED: u64 = 4 * GIB;
/// Stack guard pages the map leaves out.
pub const MAX_GUARD_PAGES: usize = 4;

/// The kernel image's segment boundaries (page aligned, from the linker script).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    pub text_start: u64,
    pub text_end: u64,
    pub rodata_end: u64,
    pub data_end: u64,
    /// Pages inside the data segment that stay unmapped (stack guards); 0 = unused slot.
    pub guard_pages: [u64; MAX_GUARD_PAGES],
}

impl KernelImage {
    /// What the kernel may do at `address`, or `None` for a guard page / outside the image.
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

    /// Boundaries page aligned and in order, with some text.
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
    }

    fn is_guard_page(&self, page: u64) -> bool {
        page != 0 && self.guard_pages.contains(&page)
    }
}

/// Why the map cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The kernel image boundaries are not page aligned or not in order.
    BadImageLayout,
    /// The kernel image spans more 2 MiB blocks than [`MAX_KERNEL_BLOCKS`].
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

/// What [`KernelPageTables::build`] mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSummary {
    /// One past the highest mapped address.
    pub mapped_top: u64,
    /// RAM above `mapped_top` that is not mapped (more than [`MAX_GIB`]).
    pub unmapped_ram: u64,
}

/// The tables themselves; lives in the kernel's .bss (identity mapped, so the address of a
/// table is its physical address).
#[repr(C, align(4096))]
pub struct KernelPageTables {
    pml4: PageTable,
    pdpt: PageTable,
    directories: [PageTable; MAX_GIB],
    kernel_tables: [PageTable; MAX_KERNEL_BLOCKS],
    /// Base address of the 2 MiB block each kernel table maps (valid up to `kernel_blocks`).
    kernel_block_base: [u64; MAX_KERNEL_BLOCKS],
    kernel_blocks: usize,
}

/// The address of a table as the CPU sees it (virtual == physical in the identity map).
fn table_address(table: &PageTable) -> u64 {
    core::ptr::from_ref(table) as u64
}

impl KernelPageTables {
    pub const fn new() -> Self {
        Self {
            pml4: PageTable::EMPTY,
            pdpt: PageTable::EMPTY,
            directories: [const { PageTable::EMPTY }; MAX_GIB],
            kernel_tables: [const { PageTable::EMPTY }; MAX_KERNEL_BLOCKS],
            kernel_block_base: [0; MAX_KERNEL_BLOCKS],
            kernel_blocks: 0,
        }
    }

    /// The value for CR3 (the PML4's address; PCD/PWT clear: the tables are write-back).
    pub fn root(&self) -> u64 {
        table_address(&self.pml4)
    }

    /// Fills the tables for `image` and the RAM in `regions`. `nx`: EFER.NXE is on.
    pub fn build(
        &mut self,
        image: &KernelImage,
        regions: &[MemoryRegion],
        nx: bool,
    ) -> Result<MapSummary, MapError> {
        if !image.is_well_formed() {
            return Err(MapError::BadImageLayout);
        }
        let first_block = image.text_start / LARGE_PAGE_SIZE;
        let last_block = (image.data_end - 1) / LARGE_PAGE_SIZE;
        let blocks = usize::try_from(last_block - first_block + 1).unwrap_or(usize::MAX);
        if blocks > MAX_KERNEL_BLOCKS {
            return Err(MapError::ImageTooLarge);
        }

        let ram_top = memory_map::Summary::of(regions).ram_top;
        let wanted_top = ram_top.max(MIN_MAPPED).next_multiple_of(GIB);
        let mapped_top = wanted_top.min(MAX_GIB as u64 * GIB);
        let gibs = (mapped_top / GIB) as usize;

        // Kernel blocks first: 4 KiB pages by segment.
        self.kernel_blocks = blocks;
        for (slot, block) in (first_block..=last_block).enumerate() {
            let base = block * LARGE_PAGE_SIZE;
            self.kernel_block_base[slot] = base;
            for (i, pte) in self.kernel_tables[slot].0.iter_mut().enumerate() {
                let page = base + i as u64 * PAGE_SIZE;
                *pte = match image.access(page) {
                    Some(access) => page_table::entry(page, access.flags(nx)),
                    None if image.is_guard_page(page) => 0,
                    // Outside the image but in its 2 MiB block: ordinary RAM.
                    None => page_table::entry(page, Access::ReadWrite.flags(nx)),
                };
            }
        }

        // Every other 2 MiB block of 0..mapped_top as one large page.
        for gib in 0..gibs {
            for i in 0..ENTRIES {
                let base = gib as u64 * GIB + i as u64 * LARGE_PAGE_SIZE;
                let pde = match self.kernel_block_base[..blocks]
                    .iter()
                    .position(|&b| b == base)
                {
                    Some(slot) => page_table::entry(
                        table_address(&self.kernel_tables[slot]),
                        Access::ReadWrite.flags(false),
                    ),
                    None => {
                        let access = large_page_access(regions, base);
                        page_table::entry(base, access.flags(nx) | page_table::HUGE_PAGE)
                    }
                };
                self.directories[gib].0[i] = pde;
            }
            // Upper levels allow everything; the leaves decide.
            self.pdpt.0[gib] = page_table::entry(
                table_address(&self.directories[gib]),
                Access::ReadWrite.flags(false),
            );
        }
        self.pml4.0[0] =
            page_table::entry(table_address(&self.pdpt), Access::ReadWrite.flags(false));

        Ok(MapSummary {
            mapped_top,
            unmapped_ram: ram_top.saturating_sub(mapped_top),
        })
    }

    /// The leaf entry mapping `address` (for checks; follows the table slots, not pointers).
    pub fn leaf(&self, address: u64) -> Option<u64> {
        if page_table::index(address, 4) != 0 {
            return None;
        }
        let gib = page_table::index(address, 3);
        if gib >= MAX_GIB || self.pdpt.0[gib] == 0 {
            return None;
        }
        let pde = self.directories[gib].0[page_table::index(address, 2)];
        if pde & page_table::HUGE_PAGE != 0 {
            return Some(pde);
        }
        let block = address & !(LARGE_PAGE_SIZE - 1);
        let slot = self.kernel_block_base[..self.kernel_blocks]
            .iter()
            .position(|&b| b == block)?;
        Some(self.kernel_tables[slot].0[page_table::index(address, 1)])
    }
}

impl Default for KernelPageTables {
    fn default() -> Self {
        Self::new()
    }
}

/// Device window and ranges without RAM are uncacheable; the rest is RAM.
fn large_page_access(regions: &[MemoryRegion], base: u64) -> Access {
    let in_device_window = base >= DEVICE_WINDOW.0 && base < DEVICE_WINDOW.1;
    if in_device_window || !memory_map::overlaps_ram(regions, base, LARGE_PAGE_SIZE) {
        Access::Device
    } else {
        Access::ReadWrite
    }
}
