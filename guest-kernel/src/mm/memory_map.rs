//! Facts about the firmware's memory map (`BootInfo::memory_map`): how much RAM is usable,
//! where RAM ends, which ranges hold no RAM at all.

use rampart_boot_info::{MemoryKind, MemoryRegion};

pub const MIB: u64 = 1 << 20;

/// Totals over the memory map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes in `Usable` regions.
    pub usable_bytes: u64,
    /// Number of `Usable` regions.
    pub usable_regions: usize,
    /// One past the highest byte of RAM (any kind except MMIO), 0 for an empty map.
    pub ram_top: u64,
}

impl Summary {
    /// Sums the map. Regions of unknown kinds are counted as RAM but never as usable.
    pub fn of(regions: &[MemoryRegion]) -> Self {
        let mut summary = Self::default();
        for region in regions {
            let kind = region.kind();
            if kind == Some(MemoryKind::Usable) {
                summary.usable_bytes = summary.usable_bytes.saturating_add(region.length);
                summary.usable_regions += 1;
            }
            if kind.is_none_or(MemoryKind::is_ram) {
                summary.ram_top = summary
                    .ram_top
                    .max(region.start.saturating_add(region.length));
            }
        }
        summary
    }

    /// Usable RAM in whole MiB (rounded down).
    pub fn usable_mib(&self) -> u64 {
        self.usable_bytes / MIB
    }
}

/// True if `[start, start + length)` overlaps RAM of any kind (anything but MMIO) in the map.
/// Ranges without RAM are mapped uncacheable: they can only hold devices.
pub fn overlaps_ram(regions: &[MemoryRegion], start: u64, length: u64) -> bool {
    let end = start.saturating_add(length);
    regions.iter().any(|region| {
        region.kind().is_none_or(MemoryKind::is_ram)
            && region.start < end
            && start < region.start.saturating_add(region.length)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> [MemoryRegion; 5] {
        [
            MemoryRegion::new(0, 0x9f000, MemoryKind::Usable),
            MemoryRegion::new(0x10_0000, 0xf0_0000, MemoryKind::Usable),
            MemoryRegion::new(0x100_0000, 0x20_0000, MemoryKind::KernelImage),
            MemoryRegion::new(0x120_0000, 0x1ee0_0000, MemoryKind::Usable),
            MemoryRegion::new(0xfec0_0000, 0x1000, MemoryKind::Mmio),
        ]
    }

    #[test]
    fn summary_counts_usable_regions_and_ram_top() {
        let summary = Summary::of(&map());
        assert_eq!(summary.usable_regions, 3);
        assert_eq!(summary.usable_bytes, 0x9f000 + 0xf0_0000 + 0x1ee0_0000);
        assert_eq!(summary.usable_mib(), 509);
        assert_eq!(summary.ram_top, 0x2000_0000);
    }

    #[test]
    fn empty_map_summarises_to_zero() {
        assert_eq!(Summary::of(&[]), Summary::default());
    }

    #[test]
    fn mmio_is_not_ram() {
        let regions = map();
        assert!(overlaps_ram(&regions, 0x1fe0_0000, 0x20_0000));
        assert!(!overlaps_ram(&regions, 0x2000_0000, 0x20_0000));
        assert!(!overlaps_ram(&regions, 0xfec0_0000, 0x20_0000));
    }
}
