//! The host's own page tables: an identity map of the physical address space with 2 MiB pages
//! (SDM Vol. 3A 5.5, 4-level paging), built in hypervisor-reserved frames.

use crate::frames::{FrameAllocator, FRAME_SIZE};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const PAGE_SIZE_2M: u64 = 1 << 7;
/// PWT and PCD: uncacheable (SDM Vol. 3A 12.12.3), for the local APIC and IOAPIC range, which
/// must not be cached (11.4.1).
const UNCACHEABLE: u64 = (1 << 3) | (1 << 4);
const APIC_RANGE: core::ops::Range<u64> = 0xfec0_0000..0x1_0000_0000;
const ENTRIES: u64 = 512;
const TWO_MIB: u64 = 2 << 20;
const ONE_GIB: u64 = 1 << 30;
const MAX_TOP: u64 = 512 * ONE_GIB;

/// Builds the tables covering `[0, top)` (rounded up to 1 GiB, at most 512 GiB) and returns
/// the PML4's physical address for CR3, or `None` if the frames ran out.
///
/// # Safety
/// The frames handed out by `frames` must be identity-mapped and owned by the hypervisor.
pub unsafe fn build_identity_map(frames: &mut FrameAllocator, top: u64) -> Option<u64> {
    let gigabytes = top.min(MAX_TOP).div_ceil(ONE_GIB);
    // SAFETY: the caller guarantees the frames are identity-mapped and ours.
    let (pml4, pdpt) = unsafe { (zeroed_frame(frames)?, zeroed_frame(frames)?) };
    // SAFETY: both frames were just allocated, are identity-mapped (caller contract) and
    // zeroed; nothing else refers to them.
    unsafe { *(pml4 as *mut u64) = pdpt | PRESENT | WRITABLE };
    for gib in 0..gigabytes {
        // SAFETY: as above.
        let pd = unsafe { zeroed_frame(frames)? };
        for i in 0..ENTRIES {
            let address = gib * ONE_GIB + i * TWO_MIB;
            let apic = APIC_RANGE.contains(&address);
            let caching = if apic { UNCACHEABLE } else { 0 };
            let entry = address | PRESENT | WRITABLE | PAGE_SIZE_2M | caching;
            // SAFETY: `pd` is a fresh identity-mapped frame; `i` < 512 stays inside it.
            unsafe { *(pd as *mut u64).add(i as usize) = entry };
        }
        // SAFETY: `gib` < 512 indexes inside the PDPT frame.
        unsafe { *(pdpt as *mut u64).add(gib as usize) = pd | PRESENT | WRITABLE };
    }
    Some(pml4)
}

/// One frame, zeroed.
///
/// # Safety
/// `frames` must hand out identity-mapped frames that the hypervisor owns.
pub unsafe fn zeroed_frame(frames: &mut FrameAllocator) -> Option<u64> {
    let frame = frames.allocate(1)?;
    // SAFETY: per the caller, the frame is ours and identity-mapped; the allocator never hands
    // it out twice, so no one else references it.
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize) };
    Some(frame)
}

/// Loads CR3.
///
/// # Safety
/// `pml4` must map all memory the hypervisor uses from now on (code, statics, stack, frames).
pub unsafe fn activate(pml4: u64) {
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { x86::controlregs::cr3_write(pml4) };
}
