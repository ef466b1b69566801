use super::memory_type::*;
use super::*;

const MIB: u64 = 1 << 20;

fn uefi(start: u64, bytes: u64, memory_type: u32) -> UefiRegion {
    UefiRegion {
        start,
        pages: bytes / PAGE_SIZE,
        memory_type,
    }
}

fn run(input: &[UefiRegion], exclude: &[Excluded]) -> Vec<MemoryRegion> {
    let mut out = [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS];
    let count = carve(input.iter().copied(), exclude, &mut out).unwrap();
    out[..count].to_vec()
}

fn assert_sorted_disjoint(regions: &[MemoryRegion]) {
    for pair in regions.windows(2) {
        assert!(pair[0].end() <= pair[1].start, "{pair:?}");
        let mergeable = pair[0].end() == pair[1].start && pair[0].kind == pair[1].kind;
        assert!(!mergeable, "not merged: {pair:?}");
    }
}

#[test]
fn kinds_are_mapped() {
    assert_eq!(kind_of(CONVENTIONAL), Some(MemoryKind::Usable));
    assert_eq!(kind_of(BOOT_SERVICES_DATA), Some(MemoryKind::Usable));
    assert_eq!(kind_of(LOADER_CODE), Some(MemoryKind::Usable));
    assert_eq!(kind_of(ACPI_RECLAIM), Some(MemoryKind::AcpiReclaimable));
    assert_eq!(kind_of(ACPI_NVS), Some(MemoryKind::AcpiNvs));
    assert_eq!(kind_of(MMIO_PORT_SPACE), Some(MemoryKind::Mmio));
    assert_eq!(
        kind_of(RUNTIME_SERVICES_CODE),
        Some(MemoryKind::FirmwareRuntime)
    );
    assert_eq!(kind_of(KERNEL), Some(MemoryKind::KernelImage));
    assert_eq!(kind_of(MODULE), Some(MemoryKind::BootModule));
    assert_eq!(kind_of(BOOT_AREA), Some(MemoryKind::BootReclaimable));
    assert_eq!(kind_of(HYPERVISOR), None);
    assert_eq!(kind_of(UNUSABLE), Some(MemoryKind::Reserved));
    assert_eq!(kind_of(0x7000_0000), Some(MemoryKind::Reserved));
}

#[test]
fn unsorted_input_is_sorted_and_adjacent_same_kind_merged() {
    let input = [
        uefi(16 * MIB, 4 * MIB, KERNEL),
        uefi(0, MIB, CONVENTIONAL),
        uefi(MIB, MIB, BOOT_SERVICES_CODE),
        uefi(2 * MIB, 14 * MIB, LOADER_DATA),
        uefi(20 * MIB, MIB, ACPI_NVS),
    ];
    let out = run(&input, &[]);
    assert_eq!(
        out,
        [
            MemoryRegion::new(0, 16 * MIB, MemoryKind::Usable),
            MemoryRegion::new(16 * MIB, 4 * MIB, MemoryKind::KernelImage),
            MemoryRegion::new(20 * MIB, MIB, MemoryKind::AcpiNvs),
        ]
    );
}

#[test]
fn middle_insert_merges_both_sides() {
    let input = [
        uefi(0, MIB, CONVENTIONAL),
        uefi(2 * MIB, MIB, CONVENTIONAL),
        uefi(MIB, MIB, BOOT_SERVICES_DATA),
    ];
    assert_eq!(
        run(&input, &[]),
        [MemoryRegion::new(0, 3 * MIB, MemoryKind::Usable)]
    );
}

#[test]
fn excluded_ranges_never_appear() {
    let input = [
        uefi(0, 64 * MIB, CONVENTIONAL),
        uefi(64 * MIB, 8 * MIB, HYPERVISOR),
        uefi(72 * MIB, 8 * MIB, LOADER_CODE),
    ];
    let exclude = [
        Excluded {
            start: 10 * MIB + 5,
            end: 12 * MIB - 7,
        },
        Excluded {
            start: 74 * MIB,
            end: 75 * MIB,
        },
    ];
    let out = run(&input, &exclude);
    assert_sorted_disjoint(&out);
    assert_eq!(
        out,
        [
            MemoryRegion::new(0, 10 * MIB, MemoryKind::Usable),
            MemoryRegion::new(12 * MIB, 52 * MIB, MemoryKind::Usable),
            MemoryRegion::new(72 * MIB, 2 * MIB, MemoryKind::Usable),
            MemoryRegion::new(75 * MIB, 5 * MIB, MemoryKind::Usable),
        ]
    );
}

#[test]
fn exclusion_covering_whole_descriptors_and_overlapping_exclusions() {
    let input = [
        uefi(0, MIB, CONVENTIONAL),
        uefi(MIB, MIB, LOADER_CODE),
        uefi(2 * MIB, MIB, CONVENTIONAL),
    ];
    let exclude = [
        Excluded {
            start: MIB / 2,
            end: 2 * MIB,
        },
        Excluded {
            start: MIB,
            end: 5 * MIB / 2,
        },
    ];
    assert_eq!(
        run(&input, &exclude),
        [
            MemoryRegion::new(0, MIB / 2, MemoryKind::Usable),
            MemoryRegion::new(5 * MIB / 2, MIB / 2, MemoryKind::Usable)
        ]
    );
}

#[test]
fn errors() {
    let mut out = [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS];
    let overlap = [uefi(0, 2 * MIB, CONVENTIONAL), uefi(MIB, 2 * MIB, ACPI_NVS)];
    assert_eq!(
        carve(overlap, &[], &mut out),
        Err(MemoryMapError::Overlap { start: MIB })
    );
    let wrap = [UefiRegion {
        start: u64::MAX - PAGE_SIZE + 1,
        pages: 2,
        memory_type: CONVENTIONAL,
    }];
    assert!(matches!(
        carve(wrap, &[], &mut out),
        Err(MemoryMapError::EntryWraps { .. })
    ));
    // Alternating kinds cannot merge: one more than fits.
    let many: Vec<UefiRegion> = (0..=MAX_MEMORY_REGIONS as u64)
        .map(|i| {
            uefi(
                i * PAGE_SIZE,
                PAGE_SIZE,
                if i % 2 == 0 { CONVENTIONAL } else { ACPI_NVS },
            )
        })
        .collect();
    assert_eq!(
        carve(many.iter().copied(), &[], &mut out),
        Err(MemoryMapError::TooManyRegions)
    );
    assert_eq!(
        carve(many[..MAX_MEMORY_REGIONS].iter().copied(), &[], &mut out),
        Ok(MAX_MEMORY_REGIONS)
    );
}

#[test]
fn random_maps_keep_invariants() {
    let mut state = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let types = [
        CONVENTIONAL,
        LOADER_CODE,
        ACPI_NVS,
        MMIO,
        HYPERVISOR,
        KERNEL,
        BOOT_AREA,
        0,
    ];
    for _ in 0..500 {
        // Disjoint descriptors in random order.
        let mut input = Vec::new();
        let mut cursor = 0;
        for _ in 0..(next() % 60) {
            cursor += (next() % 3) * PAGE_SIZE;
            let pages = next() % 64 + 1;
            input.push(UefiRegion {
                start: cursor,
                pages,
                memory_type: types[(next() % 8) as usize],
            });
            cursor += pages * PAGE_SIZE;
        }
        for i in (1..input.len()).rev() {
            input.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let exclude: Vec<Excluded> = (0..next() % 3)
            .map(|_| {
                let start = next() % (cursor + 1);
                Excluded {
                    start,
                    end: start + next() % (64 * PAGE_SIZE),
                }
            })
            .collect();
        let out = run(&input, &exclude);
        assert_sorted_disjoint(&out);
        for region in &out {
            for range in &exclude {
                let (start, end) = (
                    align_down(range.start, PAGE_SIZE),
                    align_up(range.end, PAGE_SIZE).unwrap(),
                );
                assert!(
                    region.end() <= start || region.start >= end,
                    "{region:?} in {range:?}"
                );
            }
            for hv in input.iter().filter(|r| r.memory_type == HYPERVISOR) {
                assert!(
                    region.end() <= hv.start || region.start >= hv.start + hv.pages * PAGE_SIZE
                );
            }
        }
        // Every page of every visible descriptor outside the exclusions is present.
        let total: u64 = out.iter().map(|r| r.length).sum();
        let expected: u64 = input
            .iter()
            .filter(|r| r.memory_type != HYPERVISOR)
            .flat_map(|r| (0..r.pages).map(move |p| r.start + p * PAGE_SIZE))
            .filter(|&page| {
                exclude.iter().all(|e| {
                    page + PAGE_SIZE <= align_down(e.start, PAGE_SIZE)
                        || page >= align_up(e.end, PAGE_SIZE).unwrap()
                })
            })
            .count() as u64
            * PAGE_SIZE;
        assert_eq!(total, expected);
    }
}

#[test]
fn ram_top_ignores_mmio() {
    let regions = [
        MemoryRegion::new(0, MIB, MemoryKind::Usable),
        MemoryRegion::new(0xFEC0_0000, PAGE_SIZE, MemoryKind::Mmio),
    ];
    assert_eq!(ram_top(&regions), MIB);
}
