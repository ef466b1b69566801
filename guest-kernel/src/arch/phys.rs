//! Physical memory as the kernel touches it: the frame allocator (a free list threaded through
//! the free frames themselves, reached via the direct map), page tables in frames, byte views
//! of boot modules, and the kernel heap (`buddy_system_allocator`, fed one contiguous range).

use crate::mm::address_space::PhysMemory;
use crate::mm::layout::phys_to_virt;
use crate::mm::page_table::{ENTRIES, NO_EXECUTE, PAGE_SIZE, USER};
use buddy_system_allocator::LockedHeap;
use spin::Mutex;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// The free list: `head` is the first free frame (0 = none); each free frame's first word holds
/// the next one.
struct FreeList {
    head: u64,
    count: u64,
}

static FREE: Mutex<FreeList> = Mutex::new(FreeList { head: 0, count: 0 });

/// Says whether a frame of user text is shared program text to keep (the kernel's text cache),
/// set once by the process module; until then no frame is.
static SHARED_TEXT: spin::Once<fn(u64) -> bool> = spin::Once::new();

/// Makes `holds` the test of [`Frames`]' `free_leaf` for shared program text (kept, granted,
/// for the next process of the program). Only the first call counts.
pub fn set_shared_text(holds: fn(u64) -> bool) {
    SHARED_TEXT.call_once(|| holds);
}

/// Gives the kernel heap the physical range `[start, start + size)`.
///
/// # Safety
/// The range must be RAM in the direct map, used by nothing else ever again, and this must be
/// called once.
pub unsafe fn init_heap(start: u64, size: u64) {
    // SAFETY: per the caller, the range is unused RAM, mapped writable in the direct map.
    unsafe {
        HEAP.lock()
            .init(phys_to_virt(start) as usize, size as usize)
    };
}

/// Adds the frames of `[start, end)` (page aligned) to the allocator.
///
/// # Safety
/// The frames must be RAM in the direct map that nothing else uses or will use.
pub unsafe fn add_range(start: u64, end: u64) {
    for frame in (start..end).step_by(PAGE_SIZE as usize) {
        // SAFETY: the caller hands over these frames.
        unsafe { push(frame) };
    }
}

/// # Safety
/// `frame` must be a free frame in the direct map owned by nobody.
unsafe fn push(frame: u64) {
    let mut list = FREE.lock();
    // SAFETY: the frame is free and mapped writable in the direct map (caller).
    unsafe { core::ptr::write(phys_to_virt(frame) as *mut u64, list.head) };
    list.head = frame;
    list.count += 1;
}

/// Free frames right now.
pub fn free_frames() -> u64 {
    FREE.lock().count
}

/// The frame allocator and page-table access through the direct map.
pub struct Frames;

impl PhysMemory for Frames {
    fn allocate(&mut self) -> Option<u64> {
        let mut list = FREE.lock();
        let frame = list.head;
        if frame == 0 {
            return None;
        }
        let page = phys_to_virt(frame) as *mut u8;
        // SAFETY: `frame` is on the free list, so it is unused RAM in the direct map; its first
        // word is the next free frame. Zeroing the page hands it out clean.
        unsafe {
            list.head = core::ptr::read(page as *const u64);
            core::ptr::write_bytes(page, 0, PAGE_SIZE as usize);
        }
        list.count -= 1;
        Some(frame)
    }

    fn free(&mut self, frame: u64) {
        // SAFETY: `PhysMemory::free` takes back only frames `allocate` gave out and whose user
        // (a page-table entry or kernel stack) is gone.
        unsafe { push(frame) };
    }

    fn free_leaf(&mut self, frame: u64, entry: u64) {
        let executable_user = entry & (USER | NO_EXECUTE) == USER;
        // Shared program text stays (granted) for the next process of the program.
        if executable_user && SHARED_TEXT.get().is_some_and(|holds| holds(frame)) {
            return;
        }
        // A user text page was granted execute (and made read-only) in EPT: give it back
        // read/write before the allocator zeroes and reuses it.
        if let (true, Some(rampart)) = (executable_user, super::hypercall::rampart()) {
            let result = rampart.revoke_execute(frame, PAGE_SIZE);
            if result != 0 {
                // Reusing the frame would fault on the EPT; leak it instead.
                super::log::line(format_args!(
                    "RevokeExecute of {frame:#x} refused: {result}"
                ));
                return;
            }
        }
        self.free(frame);
    }

    fn read(&self, frame: u64, index: usize) -> u64 {
        assert!(index < ENTRIES);
        // SAFETY: `frame` holds a page table (callers walk only tables), mapped in the direct
        // map; the index is in range.
        unsafe { core::ptr::read_volatile((phys_to_virt(frame) as *const u64).add(index)) }
    }

    fn write(&mut self, frame: u64, index: usize, value: u64) {
        assert!(index < ENTRIES);
        // SAFETY: as for `read`; the page table belongs to an address space this kernel owns.
        unsafe { core::ptr::write_volatile((phys_to_virt(frame) as *mut u64).add(index), value) }
    }
}

/// The bytes of physical `[start, start + length)` (a boot module, which is never freed).
pub fn module_bytes(start: u64, length: u64) -> &'static [u8] {
    // SAFETY: boot modules are RAM the firmware filled, kind BootModule, which the frame
    // allocator never takes, so nothing writes them; the direct map covers them.
    unsafe { core::slice::from_raw_parts(phys_to_virt(start) as *const u8, length as usize) }
}

/// Copies `data` into physical memory at `address` (a frame this kernel allocated).
pub fn write_bytes(address: u64, data: &[u8]) {
    assert!(address % PAGE_SIZE + data.len() as u64 <= PAGE_SIZE);
    // SAFETY: the range lies in one frame (checked), allocated by the caller and mapped in the
    // direct map; `data` is kernel memory and cannot overlap a freshly allocated frame.
    unsafe {
        core::ptr::copy_nonoverlapping(data.as_ptr(), phys_to_virt(address) as *mut u8, data.len())
    };
}

/// Invalidates the TLB entry of `address`.
pub fn invalidate_page(address: u64) {
    // SAFETY: INVLPG only drops a cached translation.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) address, options(nostack, preserves_flags)) };
}
