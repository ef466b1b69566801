//! Which physical pages the frame allocator may hand out: page-aligned pieces of the boot
//! memory map's usable (and, once the kernel runs on its own tables, boot-reclaimable) regions,
//! above the first MiB (legacy BIOS/real-mode areas stay untouched).

use super::page_table::PAGE_SIZE;
use rampart_boot_info::{MemoryKind, MemoryRegion};

/// Memory below this is never handed out.
pub const LOW_LIMIT: u64 = 1 << 20;

/// Page-aligned `[start, end)` ranges of `regions` of kind `kind`, clipped to `[LOW_LIMIT,
/// limit)`; empty ranges are skipped.
pub fn ranges(
    regions: &[MemoryRegion],
    kind: MemoryKind,
    limit: u64,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    regions
        .iter()
        .filter(move |r| r.kind() == Some(kind))
        .filter_map(move |r| {
            let start = r.start.max(LOW_LIMIT).checked_next_multiple_of(PAGE_SIZE)?;
            let end = (r.start.saturating_add(r.length).min(limit)) & !(PAGE_SIZE - 1);
            (start < end).then_some((start, end))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_aligned_and_clipped() {
        let regions = [
            MemoryRegion::new(0, 0x9f000, MemoryKind::Usable),
            MemoryRegion::new(0x10_0800, 0x1_0000, MemoryKind::Usable),
            MemoryRegion::new(0x400_0000, 0x10_0000, MemoryKind::KernelImage),
            MemoryRegion::new(0xff00_0000, 0x2_0000_0000, MemoryKind::Usable),
            MemoryRegion::new(0x600_0000, 0x3000, MemoryKind::BootReclaimable),
        ];
        let usable: std::vec::Vec<_> = ranges(&regions, MemoryKind::Usable, 1 << 32).collect();
        assert_eq!(usable, [(0x10_1000, 0x11_0000), (0xff00_0000, 1 << 32)]);
        let boot: std::vec::Vec<_> =
            ranges(&regions, MemoryKind::BootReclaimable, 1 << 32).collect();
        assert_eq!(boot, [(0x600_0000, 0x600_3000)]);
    }
}
