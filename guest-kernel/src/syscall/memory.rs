//! `brk`: the process heap, from the page after its highest segment up to the end of the low
//! user slot (512 GiB).
//! Growing only moves the break; each heap page gets a zeroed frame on first touch
//! ([`fault_in`], from the user #PF handler, or [`populate`] before a system call copies to
//! or from the heap), so the first-touch page fault is a real, measurable path.

use super::Arguments;
use crate::arch::phys::{self, Frames};
use crate::mm::address_space::{self, PhysMemory};
use crate::mm::cpu_roots::LOW_USER_TOP;
use crate::mm::heap;
use crate::mm::page_table::{NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use crate::process::TABLE;
use rampart_kernel_abi::syscall::Errno;

/// Lowest address the heap may not reach: the end of the low user slot (`mm::cpu_roots`; the
/// stack lives in the high one).
const HEAP_LIMIT: u64 = LOW_USER_TOP;

/// `brk(address)`: 0 queries; otherwise moves the break (new pages are mapped on first touch,
/// pages above a lower break are freed).
pub fn brk(arguments: &Arguments) -> Result<u64, Errno> {
    let wanted = arguments[0];
    let mut table = TABLE.lock();
    let process = table.current();
    if wanted == 0 {
        return Ok(process.brk);
    }
    if wanted < process.brk_start {
        return Err(Errno::Invalid);
    }
    if wanted > HEAP_LIMIT {
        return Err(Errno::NoMemory);
    }
    let old_end = process.brk.next_multiple_of(PAGE_SIZE);
    let new_end = wanted.next_multiple_of(PAGE_SIZE);
    if new_end < old_end {
        shrink(process.root, new_end, old_end);
        // INVLPG reached the kernel-mode PCID only.
        crate::arch::kpti::user_mapping_removed();
    }
    process.brk = wanted;
    Ok(wanted)
}

/// Maps a zeroed RW NX frame at the heap page holding `address` if the current process's
/// heap covers it and it is not mapped yet. True if the page is mapped now (the faulting
/// access can be retried); false if `address` is not a lazy heap page or memory ran out.
pub fn fault_in(address: u64) -> bool {
    let mut table = TABLE.lock();
    let process = table.current();
    let Some(page) = heap::lazy_page(process.brk_start, process.brk, address) else {
        return false;
    };
    let root = process.root;
    let mut frames = Frames;
    drop(table);
    if address_space::leaf(&frames, root, page).is_some() {
        return true;
    }
    let Some(frame) = frames.allocate() else {
        return false;
    };
    let flags = PRESENT | USER | WRITABLE | NO_EXECUTE;
    if address_space::map(&mut frames, root, page, frame, flags).is_err() {
        frames.free(frame);
        return false;
    }
    // A page in a new GiB needs its directory entry in this CPU's table too, and the process
    // records it (the next CPU it runs on copies it).
    if let Some((slot, index)) = crate::arch::cpu_roots::mapped(page) {
        TABLE.lock().current().used.set(slot, index);
    }
    true
}

/// Maps the untouched heap pages of `[address, address + length)` (before the kernel copies
/// to or from them); pages outside the heap are left to the caller's range check.
pub fn populate(address: u64, length: u64) {
    let end = address.saturating_add(length);
    for page in address_space::pages(address, end) {
        fault_in(page);
    }
}

fn shrink(root: u64, from: u64, to: u64) {
    for page in (from..to).step_by(PAGE_SIZE as usize) {
        if let Some(frame) = address_space::unmap(&mut Frames, root, page) {
            phys::invalidate_page(page);
            Frames.free(frame);
        }
    }
}
