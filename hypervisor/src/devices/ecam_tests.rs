use super::*;
use crate::ept::builder::tests::ept;
use crate::ept::builder::PageSizes;
use crate::ept::layout::build_identity_map;
use rampart_boot_info::MemoryKind;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// QEMU q35's MCFG: segment 0, buses 0-255 at 0xB0000000.
const Q35: McfgEntry = McfgEntry {
    base: 0xb000_0000,
    segment: 0,
    first_bus: 0,
    last_bus: 255,
};

/// Low RAM to 2 GiB, then the MMCONFIG window as the firmware reports it (reserved).
fn q35_map() -> [MemoryRegion; 2] {
    [
        MemoryRegion::new(0, 2 * GIB, MemoryKind::Usable),
        MemoryRegion::new(0xb000_0000, 256 * MIB, MemoryKind::Reserved),
    ]
}

fn hypervisor() -> [PhysRange; 3] {
    [
        PhysRange::new(0x7000_0000, 8 * MIB),
        PhysRange::new(0x7e00_0000, MIB),
        PhysRange::new(0, 0),
    ]
}

#[test]
fn window_covers_the_listed_buses_from_bus_zeros_base() {
    assert_eq!(Q35.window(), Some(PhysRange::new(0xb000_0000, 256 * MIB)));
    let upper = McfgEntry {
        first_bus: 0x80,
        last_bus: 0x8f,
        ..Q35
    };
    assert_eq!(
        upper.window(),
        Some(PhysRange::new(0xb000_0000 + 0x80 * MIB, 16 * MIB))
    );
    let backwards = McfgEntry {
        first_bus: 2,
        last_bus: 1,
        ..Q35
    };
    assert_eq!(backwards.window(), None);
    let wrapping = McfgEntry {
        base: !(MIB - 1),
        ..Q35
    };
    assert_eq!(wrapping.window(), None);
}

#[test]
fn a_q35_window_over_reserved_memory_is_accepted() {
    assert_eq!(
        check(&Q35, &q35_map(), &hypervisor()),
        Ok(PhysRange::new(0xb000_0000, 256 * MIB))
    );
}

#[test]
fn bad_windows_are_rejected() {
    let regions = q35_map();
    let hv = hypervisor();
    let unaligned = McfgEntry {
        base: 0xb000_1000,
        ..Q35
    };
    assert_eq!(check(&unaligned, &regions, &hv), Err(Rejected::Unaligned));
    let over_ram = McfgEntry {
        base: 0x4000_0000,
        ..Q35
    };
    assert_eq!(check(&over_ram, &regions, &hv), Err(Rejected::OverlapsRam));
    // The hypervisor's image in the MMIO hole (not RAM in the map, still never mapped).
    let image = [PhysRange::new(0xb800_0000, MIB)];
    assert_eq!(
        check(&Q35, &regions, &image),
        Err(Rejected::OverlapsHypervisor)
    );
    let too_high = McfgEntry {
        base: (1 << 48) - 128 * MIB,
        ..Q35
    };
    assert_eq!(check(&too_high, &regions, &hv), Err(Rejected::TooHigh));
    let backwards = McfgEntry {
        first_bus: 9,
        last_bus: 8,
        ..Q35
    };
    assert_eq!(check(&backwards, &regions, &hv), Err(Rejected::BusRange));
}

#[test]
fn windows_hold_at_most_four() {
    let mut windows = Windows::new();
    for i in 0..MAX_WINDOWS as u64 {
        assert!(windows
            .push(PhysRange::new(0xb000_0000 + i * 16 * MIB, 16 * MIB))
            .is_ok());
    }
    assert!(windows.push(PhysRange::new(0xe000_0000, MIB)).is_err());
    assert_eq!(windows.len(), MAX_WINDOWS);
    assert_eq!(total_bytes(&windows), 64 * MIB);
}

#[test]
fn writes_name_dma_for_the_command_register_and_device_bar_otherwise() {
    let mut windows = Windows::new();
    windows
        .push(PhysRange::new(0xb000_0000, 256 * MIB))
        .unwrap();
    // Bus 0 device 3 function 0, Command register: Bus Master Enable.
    let function = 0xb000_0000 + (3 << 15);
    assert_eq!(write_rule(&windows, function + 0x04), Some(Rule::Dma));
    assert_eq!(write_rule(&windows, function + 0x05), Some(Rule::Dma));
    assert_eq!(
        write_rule(&windows, function),
        Some(Rule::Dma),
        "a wide write"
    );
    assert_eq!(write_rule(&windows, function + 0x10), Some(Rule::DeviceBar));
    assert_eq!(write_rule(&windows, function + 0x30), Some(Rule::DeviceBar));
    assert_eq!(write_rule(&windows, function + 0x06), Some(Rule::DeviceBar));
    // The last function of the last bus, then outside the window.
    assert_eq!(write_rule(&windows, 0xbfff_f004), Some(Rule::Dma));
    assert_eq!(write_rule(&windows, 0xc000_0004), None);
    assert_eq!(write_rule(&windows, 0xafff_f004), None);
    assert_eq!(write_rule(&Windows::new(), function + 4), None);
}

#[test]
fn the_window_is_read_only_uncacheable_in_large_pages() {
    for one_gig in [false, true] {
        let mut e = ept(PageSizes {
            large_2m: true,
            huge_1g: one_gig,
        });
        build_identity_map(&mut e, &q35_map(), &hypervisor(), 4 * GIB).unwrap();
        let before = e.table_count();
        let mut windows = Windows::new();
        windows
            .push(check(&Q35, &q35_map(), &hypervisor()).unwrap())
            .unwrap();
        map_read_only(&mut e, &windows).unwrap();
        assert!(
            e.table_count() - before <= 1,
            "at most a page directory for a split 1 GiB page"
        );
        for gpa in (0xb000_0000..0xc000_0000u64).step_by(2 * MIB as usize) {
            let t = e.translate(gpa + 0x1004).unwrap();
            assert_eq!(t.permissions, Permissions::READ);
            assert_eq!(t.memory_type, Some(MemoryType::Uncacheable));
            assert_eq!(t.page_size, 2 * MIB);
            assert_eq!(t.host_physical, gpa + 0x1004);
        }
        for neighbour in [0xafff_f000u64, 0xc000_0000] {
            let t = e.translate(neighbour).unwrap();
            assert_eq!(t.permissions, Permissions::READ_WRITE, "{neighbour:#x}");
        }
    }
}

#[test]
fn an_odd_bus_count_splits_only_the_edge() {
    let mut e = ept(PageSizes {
        large_2m: true,
        huge_1g: true,
    });
    build_identity_map(&mut e, &q35_map(), &hypervisor(), 4 * GIB).unwrap();
    let three_buses = McfgEntry {
        first_bus: 0,
        last_bus: 2,
        ..Q35
    };
    let mut windows = Windows::new();
    windows
        .push(check(&three_buses, &q35_map(), &hypervisor()).unwrap())
        .unwrap();
    map_read_only(&mut e, &windows).unwrap();
    assert_eq!(e.translate(0xb000_0000).unwrap().page_size, 2 * MIB);
    let edge = e.translate(0xb020_0000).unwrap();
    assert_eq!(
        (edge.page_size, edge.permissions),
        (4096, Permissions::READ)
    );
    let after = e.translate(0xb030_0000).unwrap();
    assert_eq!(after.permissions, Permissions::READ_WRITE);
}
