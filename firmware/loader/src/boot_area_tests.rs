use super::*;
use rampart_boot_info::{GDT_SELECTOR_CODE, GDT_SELECTOR_DATA};

const BASE: u64 = 0x0200_0000;

fn read_u64(buffer: &[u8], offset: u64) -> u64 {
    u64::from_le_bytes(
        buffer[offset as usize..offset as usize + 8]
            .try_into()
            .unwrap(),
    )
}

/// Reads guest-physical memory, which for these tests is only the boot area.
fn phys(buffer: &[u8], address: u64) -> u64 {
    assert!(
        (BASE..BASE + buffer.len() as u64).contains(&address),
        "walk left the boot area: {address:#x}"
    );
    read_u64(buffer, address - BASE)
}

/// Walks the 4-level tables like the MMU: virtual address -> (physical, entry flags).
fn translate(buffer: &[u8], cr3: u64, virt: u64) -> Option<(u64, u64)> {
    let pml4e = phys(buffer, cr3 + ((virt >> 39) & 0x1FF) * 8);
    if pml4e & pte::PRESENT == 0 {
        return None;
    }
    let pdpte = phys(
        buffer,
        (pml4e & pte::ADDRESS_MASK) + ((virt >> 30) & 0x1FF) * 8,
    );
    if pdpte & pte::PRESENT == 0 {
        return None;
    }
    assert_eq!(pdpte & pte::PAGE_SIZE, 0, "no 1 GiB pages");
    let pde = phys(
        buffer,
        (pdpte & pte::ADDRESS_MASK) + ((virt >> 21) & 0x1FF) * 8,
    );
    if pde & pte::PRESENT == 0 {
        return None;
    }
    assert_ne!(pde & pte::PAGE_SIZE, 0, "2 MiB leaf");
    Some(((pde & 0x000F_FFFF_FFE0_0000) | (virt & (TWO_MIB - 1)), pde))
}

fn build_for(ram_top: u64) -> (Vec<u8>, BootArea, Layout) {
    let layout = Layout::new(ram_top).unwrap();
    let mut buffer = vec![0xCC; layout.size as usize];
    let area = build(&mut buffer, BASE, &layout, &BootInfo::empty()).unwrap();
    (buffer, area, layout)
}

#[test]
fn layout_sizes() {
    let small = Layout::new(512 << 20).unwrap();
    assert_eq!(small.map_top, 4 * GIB);
    assert_eq!(small.size % PAGE_SIZE, 0);
    assert_eq!(small.size, small.stack + STACK_SIZE);
    assert_eq!(small.kernel_tables - small.page_directories, 4 * PAGE_SIZE);
    assert_eq!(
        small.stack - small.kernel_tables,
        KERNEL_TABLE_PAGES * PAGE_SIZE
    );
    let big = Layout::new(5 * GIB + 1).unwrap();
    assert_eq!(big.map_top, 6 * GIB);
    assert_eq!(Layout::new(512 * GIB).unwrap().map_top, 512 * GIB);
    assert!(Layout::new(512 * GIB + 1).is_err());
    assert!(Layout::new(u64::MAX).is_err());
}

#[test]
fn page_tables_identity_map_everything_below_the_top() {
    let (buffer, area, layout) = build_for(6 * GIB - 5);
    assert_eq!(area.cr3, BASE + layout.pml4);
    assert_eq!(area.cr3 % PAGE_SIZE, 0);
    let mut address = 0;
    while address < layout.map_top {
        for probe in [address, address + 0x1234, address + TWO_MIB - 1] {
            let (physical, entry) = translate(&buffer, area.cr3, probe).expect("mapped");
            assert_eq!(physical, probe);
            assert_ne!(entry & pte::WRITABLE, 0);
            assert_eq!(entry >> 63, 0, "NX clear");
            let uncached = entry & (pte::CACHE_DISABLE | pte::WRITE_THROUGH) != 0;
            assert_eq!(
                uncached,
                (HIGH_MMIO_START..4 * GIB).contains(&probe),
                "{probe:#x}"
            );
        }
        address += TWO_MIB;
    }
    assert!(translate(&buffer, area.cr3, layout.map_top).is_none());
    assert!(translate(&buffer, area.cr3, 512 * GIB).is_none());
}

#[test]
fn gdt_and_tss_descriptors() {
    let (buffer, area, layout) = build_for(0);
    assert_eq!(area.gdt_base, BASE + layout.gdt);
    assert_eq!(area.gdt_limit, 39);
    assert_eq!(read_u64(&buffer, layout.gdt), 0, "null descriptor");
    let code = read_u64(&buffer, layout.gdt + u64::from(GDT_SELECTOR_CODE));
    assert_eq!((code >> 40) & 0xFF, 0x9B);
    assert_eq!((code >> 52) & 0xF, 0b1010, "G=1, L=1, D=0");
    let data = read_u64(&buffer, layout.gdt + u64::from(GDT_SELECTOR_DATA));
    assert_eq!((data >> 40) & 0xFF, 0x93);
    assert_eq!((data >> 52) & 0xF, 0b1100, "G=1, D/B=1");
    let low = read_u64(&buffer, layout.gdt + 0x18);
    let high = read_u64(&buffer, layout.gdt + 0x20);
    let base = ((low >> 16) & 0xFF_FFFF) | (((low >> 56) & 0xFF) << 24) | (high << 32);
    let limit = (low & 0xFFFF) | (((low >> 48) & 0xF) << 16);
    assert_eq!(base, area.tss_base);
    assert_eq!(limit, 103);
    assert_eq!(area.tss_limit, 103);
    assert_eq!((low >> 40) & 0xFF, 0x89, "present, available 64-bit TSS");
    let tss = (area.tss_base - BASE) as usize;
    assert!(buffer[tss..tss + 102].iter().all(|&b| b == 0));
    assert_eq!(&buffer[tss + 102..tss + 104], &104u16.to_le_bytes());
}

#[test]
fn tss_descriptor_splits_a_high_base() {
    let [low, high] = tss_descriptor(0x1234_5678_9ABC_DEF0, 0x1_2345);
    assert_eq!(high, 0x1234_5678);
    assert_eq!((low >> 16) & 0xFF_FFFF, 0xBC_DEF0);
    assert_eq!(low >> 56, 0x9A);
    assert_eq!(low & 0xFFFF, 0x2345);
    assert_eq!((low >> 48) & 0xF, 1);
}

#[test]
fn boot_info_and_stack() {
    let (buffer, area, layout) = build_for(0);
    assert_eq!(area.boot_info, BASE);
    assert_eq!(&buffer[..8], b"RAMPBOOT");
    assert_eq!(area.stack_top % 16, 8);
    assert_eq!(area.stack_top, BASE + layout.size - 8);
    assert!(area.stack_top - (BASE + layout.stack) >= STACK_SIZE - 16);
    assert!(buffer[layout.stack as usize..].iter().all(|&b| b == 0));
}

#[test]
fn bad_inputs() {
    let layout = Layout::new(0).unwrap();
    let mut buffer = vec![0; layout.size as usize];
    assert_eq!(
        build(&mut buffer, BASE + 1, &layout, &BootInfo::empty()),
        Err(BootAreaError::Unaligned { base: BASE + 1 })
    );
    assert!(matches!(
        build(&mut buffer[..100], BASE, &layout, &BootInfo::empty()),
        Err(BootAreaError::BufferTooSmall { .. })
    ));
}
