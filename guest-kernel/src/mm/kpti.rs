//! Kernel page-table isolation (KPTI), the pure part: the shared "template" kernel half that
//! user mode runs on.
//!
//! With `kpti=on` every CPU has two roots (`mm::cpu_roots`). The kernel-mode root is the usual
//! one (kernel half of `mm::kernel_map`); the user-mode root shares the same lower-half PML4
//! entries (the CPU's directory tables) and takes its upper half from the template, which maps
//! only what the CPU touches before the entry code has switched CR3: the entry text (R-X) and
//! the entry data (GDT, IDT, TSSs, per-CPU blocks and entry stacks; RW-, NX), at their normal
//! virtual addresses. The template is built once at boot and never changes afterwards, so one
//! copy serves every CPU.

use super::layout::KERNEL_PML4_FIRST;
use super::page_table::{self, Access, PageTable, GIB, LARGE_PAGE_SIZE, PAGE_SIZE};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Physical address of the template PML4 once built (0 before, and with `kpti=off`).
static TEMPLATE_ROOT: AtomicU64 = AtomicU64::new(0);

/// Records the built template's physical root (once, at boot, before any lock).
pub fn set_template_root(root: u64) {
    TEMPLATE_ROOT.store(root, Ordering::SeqCst);
}

/// The template's physical root: the tables the hypervisor's `LockKernelMappings` locks as
/// the user-mode kernel half (RDX). `None` with `kpti=off`.
pub fn template_root() -> Option<u64> {
    Some(TEMPLATE_ROOT.load(Ordering::SeqCst)).filter(|&root| root != 0)
}

/// 2 MiB blocks the template may touch (each gets one page table).
pub const MAX_BLOCKS: usize = 4;

/// A range of kernel virtual memory the template maps, page aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRange {
    pub start: u64,
    pub end: u64,
    pub access: Access,
}

/// Why the template cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// A range is empty, not page aligned, or not in the kernel half.
    BadRange,
    /// The ranges span more than one GiB or more than [`MAX_BLOCKS`] 2 MiB blocks.
    TooSpread,
    /// Two ranges overlap with different rights.
    Conflict,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadRange => "entry range not page aligned, empty or outside the kernel half",
            Self::TooSpread => "entry ranges spread over too many 2 MiB blocks",
            Self::Conflict => "entry ranges overlap with different rights",
        })
    }
}

/// The template's tables: a PML4 whose only entry is the kernel image's slot, and below it one
/// PDPT, one page directory and a page table per 2 MiB block used. Lives in the kernel image
/// (static), so `virt_offset` gives the physical addresses.
#[repr(C, align(4096))]
pub struct TemplateTables {
    pml4: PageTable,
    pdpt: PageTable,
    directory: PageTable,
    tables: [PageTable; MAX_BLOCKS],
}

impl TemplateTables {
    pub const fn new() -> Self {
        Self {
            pml4: PageTable::EMPTY,
            pdpt: PageTable::EMPTY,
            directory: PageTable::EMPTY,
            tables: [const { PageTable::EMPTY }; MAX_BLOCKS],
        }
    }

    /// The template PML4; its upper half becomes every user-mode root's.
    pub fn pml4(&self) -> &PageTable {
        &self.pml4
    }

    /// Maps `ranges` (supervisor only, `nx` as in `Access::flags`) and nothing else.
    /// `virt_offset` turns the image's virtual addresses (ranges and tables) into physical ones.
    pub fn build(
        &mut self,
        ranges: &[EntryRange],
        virt_offset: u64,
        nx: bool,
    ) -> Result<(), TemplateError> {
        let Some(first) = ranges.first() else {
            return Err(TemplateError::BadRange);
        };
        for range in ranges {
            let aligned =
                range.start.is_multiple_of(PAGE_SIZE) && range.end.is_multiple_of(PAGE_SIZE);
            let upper = page_table::index(range.start, 4) >= KERNEL_PML4_FIRST;
            if !aligned || range.start >= range.end || !upper {
                return Err(TemplateError::BadRange);
            }
            if range.start / GIB != first.start / GIB || (range.end - 1) / GIB != first.start / GIB
            {
                return Err(TemplateError::TooSpread);
            }
        }
        let phys =
            |table: &PageTable| (core::ptr::from_ref(table) as u64).wrapping_sub(virt_offset);
        let mut blocks = [u64::MAX; MAX_BLOCKS];
        for range in ranges {
            for page in (range.start..range.end).step_by(PAGE_SIZE as usize) {
                let block = page / LARGE_PAGE_SIZE;
                let slot = match blocks.iter().position(|&b| b == block || b == u64::MAX) {
                    Some(slot) => slot,
                    None => return Err(TemplateError::TooSpread),
                };
                blocks[slot] = block;
                let entry =
                    page_table::entry(page.wrapping_sub(virt_offset), range.access.flags(nx));
                let pte = &mut self.tables[slot].0[page_table::index(page, 1)];
                if *pte != 0 && *pte != entry {
                    return Err(TemplateError::Conflict);
                }
                *pte = entry;
            }
        }
        let table_entry =
            |table: &PageTable| page_table::entry(phys(table), Access::ReadWrite.flags(false));
        for (slot, &block) in blocks.iter().enumerate().filter(|(_, &b)| b != u64::MAX) {
            let index = page_table::index(block * LARGE_PAGE_SIZE, 2);
            self.directory.0[index] = table_entry(&self.tables[slot]);
        }
        self.pdpt.0[page_table::index(first.start, 3)] = table_entry(&self.directory);
        self.pml4.0[page_table::index(first.start, 4)] = table_entry(&self.pdpt);
        Ok(())
    }

    /// The leaf entry for `address` (0 if unmapped), walking the template like the MMU.
    pub fn leaf(&self, address: u64, virt_offset: u64) -> u64 {
        let mut table = &self.pml4;
        for level in [4, 3, 2, 1] {
            let entry = table.0[page_table::index(address, level)];
            if entry & page_table::PRESENT == 0 || level == 1 {
                return entry;
            }
            let wanted = page_table::entry_address(entry);
            let tables = [&self.pdpt, &self.directory]
                .into_iter()
                .chain(self.tables.iter());
            let found = tables
                .into_iter()
                .find(|t| (core::ptr::from_ref(*t) as u64).wrapping_sub(virt_offset) == wanted);
            match found {
                Some(next) => table = next,
                None => return 0,
            }
        }
        0
    }
}

impl Default for TemplateTables {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[path = "kpti_tests.rs"]
mod tests;
