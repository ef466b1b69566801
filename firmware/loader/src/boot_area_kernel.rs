//! Maps the kernel's PT_LOAD segments at their virtual addresses in the boot page tables, in
//! addition to the identity map, so a kernel linked in the upper half can be entered at its
//! virtual `e_entry` (4 KiB pages, present + writable; the kernel replaces these tables at once).

use crate::boot_area::{pte, write_u64, BootArea, BootAreaError, Layout, KERNEL_TABLE_PAGES};
use crate::elf::Segment;
use crate::PAGE_SIZE;

/// Entries per page table.
const ENTRIES: u64 = 512;

/// Maps every page of `segments` whose virtual address differs from its physical one, using the
/// layout's kernel-table pages. `buffer` and `base` are those given to `boot_area::build`,
/// which must have run first (the identity map's PML4 is reused).
pub fn map_kernel(
    buffer: &mut [u8],
    base: u64,
    layout: &Layout,
    area: &BootArea,
    segments: &[Segment],
) -> Result<(), BootAreaError> {
    let mut used = 0;
    for segment in segments {
        let first = segment.vaddr & !(PAGE_SIZE - 1);
        let end = segment
            .vaddr
            .checked_add(segment.memsz)
            .and_then(|end| end.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(BootAreaError::KernelTooLarge)?;
        let physical = segment.paddr & !(PAGE_SIZE - 1);
        for virt in (first..end).step_by(PAGE_SIZE as usize) {
            let phys = physical + (virt - first);
            if virt != phys {
                map_page(buffer, base, layout, area.cr3, virt, phys, &mut used)?;
            }
        }
    }
    Ok(())
}

/// One 4 KiB mapping `virt -> phys`, allocating intermediate tables as needed.
fn map_page(
    buffer: &mut [u8],
    base: u64,
    layout: &Layout,
    cr3: u64,
    virt: u64,
    phys: u64,
    used: &mut u64,
) -> Result<(), BootAreaError> {
    let mut table = cr3;
    for level in [4u32, 3, 2] {
        let index = (virt >> (12 + 9 * (level - 1))) % ENTRIES;
        let slot = table - base + index * 8;
        let entry = read_u64(buffer, slot);
        if entry & pte::PRESENT == 0 {
            if *used == KERNEL_TABLE_PAGES {
                return Err(BootAreaError::KernelTooLarge);
            }
            let offset = layout.kernel_tables + *used * PAGE_SIZE;
            *used += 1;
            write_u64(buffer, slot, (base + offset) | pte::PRESENT | pte::WRITABLE);
            table = base + offset;
        } else if entry & pte::PAGE_SIZE != 0 {
            return Err(BootAreaError::KernelMapConflict { vaddr: virt });
        } else {
            table = entry & pte::ADDRESS_MASK;
        }
    }
    let slot = table - base + ((virt >> 12) % ENTRIES) * 8;
    write_u64(buffer, slot, phys | pte::PRESENT | pte::WRITABLE);
    Ok(())
}

fn read_u64(buffer: &[u8], offset: u64) -> u64 {
    let at = offset as usize;
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buffer[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_area::build;
    use crate::elf::SegmentFlags;
    use rampart_boot_info::BootInfo;

    const BASE: u64 = 0x0200_0000;

    fn walk(buffer: &[u8], cr3: u64, virt: u64) -> Option<u64> {
        let mut table = cr3;
        for level in [4u32, 3, 2, 1] {
            let index = (virt >> (12 + 9 * (level - 1))) % ENTRIES;
            let entry = read_u64(buffer, table - BASE + index * 8);
            if entry & pte::PRESENT == 0 {
                return None;
            }
            if level == 2 && entry & pte::PAGE_SIZE != 0 {
                return Some((entry & 0x000F_FFFF_FFE0_0000) | (virt & 0x1F_FFFF));
            }
            table = entry & pte::ADDRESS_MASK;
        }
        Some(table | (virt & 0xFFF))
    }

    fn segment(vaddr: u64, paddr: u64, memsz: u64) -> Segment {
        Segment {
            paddr,
            vaddr,
            offset: 0,
            filesz: 0,
            memsz,
            flags: SegmentFlags(5),
        }
    }

    #[test]
    fn upper_half_segments_are_mapped_beside_the_identity_map() {
        let layout = Layout::new(512 << 20).unwrap();
        let mut buffer = vec![0; layout.size as usize];
        let area = build(&mut buffer, BASE, &layout, &BootInfo::empty()).unwrap();
        let high = 0xFFFF_FFFF_8000_0000;
        let segments = [
            segment(high + 0x400_0000, 0x400_0000, 0x3000),
            segment(high + 0x400_3000, 0x400_3000, 0x1_0800),
        ];
        map_kernel(&mut buffer, BASE, &layout, &area, &segments).unwrap();
        assert_eq!(walk(&buffer, area.cr3, high + 0x400_0123), Some(0x400_0123));
        assert_eq!(walk(&buffer, area.cr3, high + 0x401_3fff), Some(0x401_3fff));
        assert_eq!(walk(&buffer, area.cr3, high + 0x401_4000), None);
        assert_eq!(walk(&buffer, area.cr3, 0x400_0123), Some(0x400_0123));
    }

    #[test]
    fn identity_linked_segments_need_no_tables_and_conflicts_are_errors() {
        let layout = Layout::new(512 << 20).unwrap();
        let mut buffer = vec![0; layout.size as usize];
        let area = build(&mut buffer, BASE, &layout, &BootInfo::empty()).unwrap();
        let identity = [segment(0x400_0000, 0x400_0000, 0x1000)];
        map_kernel(&mut buffer, BASE, &layout, &area, &identity).unwrap();
        let low = [segment(0x800_0000, 0x400_0000, 0x1000)];
        assert_eq!(
            map_kernel(&mut buffer, BASE, &layout, &area, &low),
            Err(BootAreaError::KernelMapConflict { vaddr: 0x800_0000 })
        );
        let huge = [segment(0xFFFF_8000_0000_0000, 0x400_0000, 64 << 20)];
        assert_eq!(
            map_kernel(&mut buffer, BASE, &layout, &area, &huge),
            Err(BootAreaError::KernelTooLarge)
        );
    }
}
