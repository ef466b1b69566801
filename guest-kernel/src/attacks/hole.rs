//! Where the hypervisor lives, as the guest can guess it: the firmware hands the guest a memory
//! map without the hypervisor's frames, so under Rampart they show as a hole between two memory
//! regions above 1 MiB (firmware `Reserved` ranges, such as QEMU's PCI MMCONFIG window, are not
//! memory and do not close one). OVMF's own maps can have small gaps too.

use rampart_boot_info::{MemoryKind, MemoryRegion};

/// Holes below this are the legacy VGA/BIOS window, not the hypervisor.
const LOW_MEMORY_END: u64 = 1 << 20;

/// Memory the firmware describes (not `Reserved` or MMIO windows).
fn is_memory(region: &MemoryRegion) -> bool {
    region.length > 0
        && !matches!(
            region.kind(),
            None | Some(MemoryKind::Reserved | MemoryKind::Mmio)
        )
}

/// The holes `[start, end)` between two memory regions above 1 MiB of the sorted memory map.
pub fn ram_holes(regions: &[MemoryRegion]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut memory = regions.iter().filter(|r| is_memory(r)).peekable();
    core::iter::from_fn(move || loop {
        let previous = memory.next()?;
        let next = memory.peek()?;
        if previous.end() >= LOW_MEMORY_END && previous.end() < next.start {
            return Some((previous.end(), next.start));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_holes_between_memory_above_one_mib() {
        let map = [
            MemoryRegion::new(0, 0x9f000, MemoryKind::Usable),
            MemoryRegion::new(0x10_0000, 0xf0_0000, MemoryKind::Usable),
            MemoryRegion::new(0x100_0000, 0x20_0000, MemoryKind::KernelImage),
            MemoryRegion::new(0x140_0000, 0x20_0000, MemoryKind::Usable),
            MemoryRegion::new(0xb000_0000, 0x1000_0000, MemoryKind::Reserved),
            MemoryRegion::new(0xfec0_0000, 0x1000, MemoryKind::Mmio),
        ];
        let holes: Vec<_> = ram_holes(&map).collect();
        let want = [(0x120_0000, 0x140_0000)];
        assert_eq!(holes, want, "RAM to a reserved window is no hole");
        assert_eq!(
            ram_holes(&map[..3]).next(),
            None,
            "below 1 MiB does not count"
        );
    }
}
