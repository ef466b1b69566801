//! The guest-physical address space: which ranges EPT maps, with which memory type.
//!
//! Everything from 0 to `top` is mapped 1:1 except the hypervisor's own ranges, which are
//! absent so that any guest touch is an EPT violation (hypervisor/DESIGN.md invariant 4). RAM
//! listed in the guest memory map is write-back; everything else (MMIO, holes, firmware-reserved
//! ranges) is uncacheable, because with EPT on the EPT memory type replaces the MTRRs' (SDM Vol. 3C
//! 29.3.7.2).

use super::builder::{Ept, EptError, TableMemory};
use super::entry::{MemoryType, Permissions};
use crate::handoff::PhysRange;
use rampart_boot_info::{MemoryKind, MemoryRegion};

const PAGE_4K: u64 = 4096;

/// The EPT memory type for a region of the guest memory map.
pub fn memory_type_of(kind: Option<MemoryKind>) -> MemoryType {
    match kind {
        Some(MemoryKind::Mmio) | Some(MemoryKind::Reserved) | None => MemoryType::Uncacheable,
        Some(_) => MemoryType::WriteBack,
    }
}

/// Calls `emit(start, end, type)` for each maximal run of `[0, top)` with one memory type,
/// skipping `excluded`. `regions` should be sorted and disjoint; overlaps are clipped. All
/// bounds are rounded outward to 4 KiB for exclusions and inward for RAM.
pub fn for_each_range(
    regions: &[MemoryRegion],
    excluded: &[PhysRange],
    top: u64,
    mut emit: impl FnMut(u64, u64, MemoryType),
) {
    let mut pending: Option<(u64, u64, MemoryType)> = None;
    // Extends the pending run when the piece continues it, else emits the run and starts anew.
    let mut push = |start: u64, end: u64, ty: MemoryType| match &mut pending {
        _ if start >= end => {}
        Some((_, e, t)) if *e == start && *t == ty => *e = end,
        _ => {
            if let Some((s, e, t)) = pending.replace((start, end, ty)) {
                emit(s, e, t);
            }
        }
    };
    // Pushes `[start, end)` minus every excluded range.
    let mut clip = |start: u64, end: u64, ty: MemoryType| {
        let mut piece_start = start;
        while piece_start < end {
            // The first exclusion that overlaps what is left.
            let hit = excluded
                .iter()
                .map(|x| (align_down(x.start), align_up(x.end())))
                .filter(|&(xs, xe)| xs < end && xe > piece_start)
                .min_by_key(|&(xs, _)| xs);
            let Some((xs, xe)) = hit else {
                return push(piece_start, end, ty);
            };
            push(piece_start, xs.max(piece_start), ty);
            piece_start = xe;
        }
    };
    let mut cursor = 0;
    for region in regions {
        let start = align_up(region.start.max(cursor)).min(top);
        let end = align_down(region.start.saturating_add(region.length)).min(top);
        if end <= start {
            continue;
        }
        clip(cursor, start, MemoryType::Uncacheable);
        clip(start, end, memory_type_of(region.kind()));
        cursor = end;
    }
    clip(cursor, top, MemoryType::Uncacheable);
    if let Some((s, e, t)) = pending {
        emit(s, e, t);
    }
}

/// Maps the guest-physical space 1:1, read/write and never executable: W^X from the start
/// (hypervisor/DESIGN.md invariant 3); the policy then makes kernel text executable and read-only.
pub fn build_identity_map<M: TableMemory>(
    ept: &mut Ept<M>,
    regions: &[MemoryRegion],
    excluded: &[PhysRange],
    top: u64,
) -> Result<(), EptError> {
    let mut result = Ok(());
    for_each_range(regions, excluded, top, |start, end, ty| {
        result = result.and_then(|()| ept.map(start, end - start, Permissions::READ_WRITE, ty));
    });
    result
}

/// Top of the guest-physical space to map: at least 4 GiB (the MMIO hole below 4 GiB holds
/// the LAPIC, IOAPIC and PCI windows), and all RAM, rounded up to 1 GiB.
pub fn address_space_top(regions: &[MemoryRegion]) -> u64 {
    const GIB: u64 = 1 << 30;
    let ram_top = regions
        .iter()
        .filter(|r| r.kind().is_some_and(|k| k.is_ram()))
        .map(|r| r.start.saturating_add(r.length))
        .max()
        .unwrap_or(0);
    ram_top
        .max(4 * GIB)
        .div_ceil(GIB)
        .saturating_mul(GIB)
        .min(1 << 48)
}

const fn align_up(x: u64) -> u64 {
    x.saturating_add(PAGE_4K - 1) & !(PAGE_4K - 1)
}

const fn align_down(x: u64) -> u64 {
    x & !(PAGE_4K - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ept::builder::tests::ept;
    use crate::ept::builder::PageSizes;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    fn ram(start: u64, length: u64) -> MemoryRegion {
        MemoryRegion::new(start, length, MemoryKind::Usable)
    }

    fn collect(
        regions: &[MemoryRegion],
        excluded: &[PhysRange],
        top: u64,
    ) -> Vec<(u64, u64, MemoryType)> {
        let mut out = Vec::new();
        for_each_range(regions, excluded, top, |s, e, t| out.push((s, e, t)));
        out
    }

    #[test]
    fn holes_are_uncacheable_and_ram_write_back() {
        let out = collect(&[ram(0, 0xa0000), ram(MIB, 511 * MIB)], &[], 4096 * MIB);
        use MemoryType::*;
        assert_eq!(
            out,
            vec![
                (0, 0xa0000, WriteBack),
                (0xa0000, MIB, Uncacheable),
                (MIB, 512 * MIB, WriteBack),
                (512 * MIB, 4096 * MIB, Uncacheable),
            ]
        );
    }

    #[test]
    fn adjacent_ram_kinds_merge() {
        let regions = [
            ram(0, 2 * MIB),
            MemoryRegion::new(2 * MIB, 2 * MIB, MemoryKind::KernelImage),
            ram(4 * MIB, 4 * MIB),
        ];
        assert_eq!(
            collect(&regions, &[], 8 * MIB),
            vec![(0, 8 * MIB, MemoryType::WriteBack)]
        );
    }

    #[test]
    fn excluded_ranges_leave_holes_even_in_gaps() {
        let hv = PhysRange::new(16 * MIB, 8 * MIB);
        let image = PhysRange::new(0xfff0_0000, 0x2_0000); // in the MMIO hole
        let out = collect(&[ram(0, 512 * MIB)], &[hv, image], 4096 * MIB);
        for (s, e, _) in out {
            assert!(!PhysRange::new(s, e - s).overlaps(&hv));
            assert!(!PhysRange::new(s, e - s).overlaps(&image));
        }
    }

    #[test]
    fn top_covers_the_mmio_hole_and_high_ram() {
        assert_eq!(address_space_top(&[ram(0, 512 * MIB)]), 4 << 30);
        assert_eq!(address_space_top(&[ram(4 << 30, (1 << 30) + 1)]), 6 << 30);
    }

    proptest! {
        /// Invariant 4 of hypervisor/DESIGN.md: whatever the memory map, no hypervisor frame is
        /// mapped, and every other page below the top is mapped to itself.
        #[test]
        fn hypervisor_frames_are_never_mapped(
            cuts in proptest::collection::vec(0u64..2048, 1..12),
            hv_start in 0u64..1024, hv_pages in 1u64..600,
            img_start in 0u64..1024, img_pages in 1u64..64,
            one_gig in any::<bool>(),
        ) {
            let mut cuts = cuts;
            cuts.sort();
            cuts.dedup();
            let regions: Vec<_> = cuts.windows(2).enumerate().map(|(i, w)| {
                let kind = if i % 3 == 2 { MemoryKind::Mmio } else { MemoryKind::Usable };
                MemoryRegion::new(w[0] * 64 * 4096, (w[1] - w[0]) * 64 * 4096, kind)
            }).collect();
            let hv = PhysRange::new(hv_start * 4096 * 7, hv_pages * 4096);
            let image = PhysRange::new(img_start * 4096 * 13, img_pages * 4096);
            let top = 64 * MIB;
            let mut e = ept(PageSizes { large_2m: true, huge_1g: one_gig });
            build_identity_map(&mut e, &regions, &[hv, image], top).unwrap();
            for page in (0..top).step_by(4096) {
                let hidden = [hv, image].iter().any(|r| r.overlaps(&PhysRange::new(page, 4096)));
                match e.translate(page) {
                    Some(t) => {
                        prop_assert!(!hidden, "hypervisor page {page:#x} mapped");
                        prop_assert_eq!(t.host_physical, page);
                    }
                    None => prop_assert!(hidden, "guest page {page:#x} not mapped"),
                }
            }
        }
    }
}
