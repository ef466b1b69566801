//! The guest boot area: BootInfo, boot GDT and TSS, identity-mapping page tables and boot stack
//! in one page-aligned buffer, laid out per the entry contract (rampart-boot-info).
//!
//! Layout (page offsets): BootInfo | GDT + TSS | PML4 | PDPT | one PD per GiB | kernel tables |
//! stack. The kernel tables map the kernel's PT_LOAD segments at their virtual addresses
//! (`boot_area_kernel`), for a kernel linked in the upper half.

use core::fmt;

use rampart_boot_info::{BootInfo, GDT_SELECTOR_TSS};

use crate::boot_info_encode::{self, ENCODED_SIZE};
use crate::{align_up, PAGE_SIZE};

const GIB: u64 = 1 << 30;
const TWO_MIB: u64 = 2 << 20;
/// Bytes of the boot stack.
pub const STACK_SIZE: u64 = 64 << 10;
/// The identity map always covers at least the first 4 GiB (low MMIO included).
pub const MIN_IDENTITY_MAP: u64 = 4 * GIB;
/// One PDPT maps 512 GiB; more guest RAM than that is not supported.
pub const MAX_IDENTITY_MAP: u64 = 512 * GIB;
/// Page-table pages reserved for the kernel's virtual mapping: a PDPT, a PD and page tables for
/// up to 12 MiB of image (more than the kernel needs by far).
pub const KERNEL_TABLE_PAGES: u64 = 8;
/// Start of the high MMIO window (IOAPIC, HPET, LAPIC, flash) mapped uncacheable.
pub const HIGH_MMIO_START: u64 = 0xFE00_0000;

/// Page-table entry bits (SDM Vol. 3A 4.5, Tables 4-15 to 4-18).
pub mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const WRITE_THROUGH: u64 = 1 << 3;
    pub const CACHE_DISABLE: u64 = 1 << 4;
    pub const PAGE_SIZE: u64 = 1 << 7;
    pub const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;
}

/// Segment descriptors (SDM Vol. 3A 3.4.5 and 7.2.3).
pub mod gdt {
    pub use rampart_boot_info::descriptors::{KERNEL_CODE64 as CODE64, KERNEL_DATA as DATA};
    /// Null, code, data and the two halves of the TSS descriptor.
    pub const ENTRIES: usize = 5;
    /// Byte offset of the TSS inside the GDT page.
    pub const TSS_OFFSET: u64 = 64;
    /// A 64-bit TSS is 104 bytes (SDM Vol. 3A 8.7).
    pub const TSS_SIZE: u64 = 104;
    /// Offset of the 16-bit I/O map base field in the TSS; set to `TSS_SIZE` (no I/O bitmap).
    pub const TSS_IOMAP_BASE: u64 = 102;
}

/// Why the boot area cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootAreaError {
    /// Guest RAM ends above what one PDPT can identity-map.
    RamTooHigh { top: u64 },
    /// The buffer is smaller than the layout needs.
    BufferTooSmall { needed: u64 },
    /// The physical base is not page aligned.
    Unaligned { base: u64 },
    /// A kernel segment's virtual address collides with the identity map.
    KernelMapConflict { vaddr: u64 },
    /// The kernel segments need more than [`KERNEL_TABLE_PAGES`] page-table pages.
    KernelTooLarge,
}

impl fmt::Display for BootAreaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RamTooHigh { top } => write!(f, "guest RAM top {top:#x} above 512 GiB"),
            Self::BufferTooSmall { needed } => write!(f, "boot area needs {needed} bytes"),
            Self::Unaligned { base } => write!(f, "boot area base {base:#x} not page aligned"),
            Self::KernelMapConflict { vaddr } => {
                write!(f, "kernel vaddr {vaddr:#x} collides with the identity map")
            }
            Self::KernelTooLarge => f.write_str("kernel image too large to map at its vaddr"),
        }
    }
}

/// Page offsets of the parts of the boot area for a given guest RAM top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes the identity map covers (a multiple of 1 GiB).
    pub map_top: u64,
    pub boot_info: u64,
    pub gdt: u64,
    pub pml4: u64,
    pub pdpt: u64,
    pub page_directories: u64,
    /// [`KERNEL_TABLE_PAGES`] pages for mapping the kernel at its virtual addresses.
    pub kernel_tables: u64,
    pub stack: u64,
    /// Total bytes (a multiple of the page size).
    pub size: u64,
}

impl Layout {
    /// The layout for an identity map covering `max(4 GiB, ram_top rounded up to 1 GiB)`.
    pub fn new(ram_top: u64) -> Result<Self, BootAreaError> {
        let too_high = BootAreaError::RamTooHigh { top: ram_top };
        let map_top = align_up(ram_top, GIB)
            .ok_or(too_high)?
            .max(MIN_IDENTITY_MAP);
        if map_top > MAX_IDENTITY_MAP {
            return Err(too_high);
        }
        let boot_info = 0;
        let gdt = align_up(ENCODED_SIZE as u64, PAGE_SIZE).unwrap_or(0);
        let pml4 = gdt + PAGE_SIZE;
        let pdpt = pml4 + PAGE_SIZE;
        let page_directories = pdpt + PAGE_SIZE;
        let kernel_tables = page_directories + (map_top / GIB) * PAGE_SIZE;
        let stack = kernel_tables + KERNEL_TABLE_PAGES * PAGE_SIZE;
        let size = stack + STACK_SIZE;
        Ok(Self {
            map_top,
            boot_info,
            gdt,
            pml4,
            pdpt,
            page_directories,
            kernel_tables,
            stack,
            size,
        })
    }

    pub const fn pages(&self) -> u64 {
        self.size / PAGE_SIZE
    }
}

/// Guest-physical addresses of what [`build`] wrote: the guest entry state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootArea {
    pub boot_info: u64,
    pub gdt_base: u64,
    pub gdt_limit: u16,
    pub tss_base: u64,
    pub tss_limit: u32,
    pub cr3: u64,
    /// 16-byte aligned minus 8, as right after a `call`.
    pub stack_top: u64,
}

/// Writes the boot area for `info` into `buffer`, which the guest sees at physical `base`.
pub fn build(
    buffer: &mut [u8],
    base: u64,
    layout: &Layout,
    info: &BootInfo,
) -> Result<BootArea, BootAreaError> {
    if !base.is_multiple_of(PAGE_SIZE) {
        return Err(BootAreaError::Unaligned { base });
    }
    let buffer = buffer
        .get_mut(..layout.size as usize)
        .ok_or(BootAreaError::BufferTooSmall {
            needed: layout.size,
        })?;
    buffer.fill(0);
    let too_small = BootAreaError::BufferTooSmall {
        needed: layout.size,
    };
    boot_info_encode::encode(info, &mut buffer[layout.boot_info as usize..]).ok_or(too_small)?;

    let tss_base = base + layout.gdt + gdt::TSS_OFFSET;
    let tss_limit = (gdt::TSS_SIZE - 1) as u32;
    let gdt_entries = [gdt::CODE64, gdt::DATA];
    for (index, entry) in gdt_entries.iter().enumerate() {
        write_u64(buffer, layout.gdt + 8 * (index as u64 + 1), *entry);
    }
    let [tss_low, tss_high] = tss_descriptor(tss_base, tss_limit);
    write_u64(buffer, layout.gdt + u64::from(GDT_SELECTOR_TSS), tss_low);
    write_u64(
        buffer,
        layout.gdt + u64::from(GDT_SELECTOR_TSS) + 8,
        tss_high,
    );
    let iomap = (layout.gdt + gdt::TSS_OFFSET + gdt::TSS_IOMAP_BASE) as usize;
    buffer[iomap..iomap + 2].copy_from_slice(&(gdt::TSS_SIZE as u16).to_le_bytes());

    write_u64(
        buffer,
        layout.pml4,
        (base + layout.pdpt) | pte::PRESENT | pte::WRITABLE,
    );
    for gib in 0..layout.map_top / GIB {
        let directory = layout.page_directories + gib * PAGE_SIZE;
        write_u64(
            buffer,
            layout.pdpt + gib * 8,
            (base + directory) | pte::PRESENT | pte::WRITABLE,
        );
        for slot in 0..512 {
            let physical = gib * GIB + slot * TWO_MIB;
            let mut entry = physical | pte::PRESENT | pte::WRITABLE | pte::PAGE_SIZE;
            if (HIGH_MMIO_START..MIN_IDENTITY_MAP).contains(&physical) {
                entry |= pte::CACHE_DISABLE | pte::WRITE_THROUGH;
            }
            write_u64(buffer, directory + slot * 8, entry);
        }
    }
    Ok(BootArea {
        boot_info: base + layout.boot_info,
        gdt_base: base + layout.gdt,
        gdt_limit: (gdt::ENTRIES * 8 - 1) as u16,
        tss_base,
        tss_limit,
        cr3: base + layout.pml4,
        stack_top: base + layout.stack + STACK_SIZE - 8,
    })
}

pub use rampart_boot_info::descriptors::tss_descriptor;

pub(crate) fn write_u64(buffer: &mut [u8], offset: u64, value: u64) {
    let at = offset as usize;
    buffer[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
#[path = "boot_area_tests.rs"]
mod tests;
