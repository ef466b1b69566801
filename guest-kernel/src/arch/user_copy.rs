//! Copies between the kernel and the current process's memory, with SMAP's STAC/CLAC around the
//! access. Callers validate the range first (`mm::user_range::check`).

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// Whether CR4.SMAP is on (STAC/CLAC exist then).
static SMAP: AtomicBool = AtomicBool::new(false);

/// Records that SMAP was enabled (by `arch::paging`).
pub fn set_smap(on: bool) {
    SMAP.store(on, Ordering::SeqCst);
}

fn with_user_access<T>(body: impl FnOnce() -> T) -> T {
    let smap = SMAP.load(Ordering::Relaxed);
    if smap {
        // SAFETY: STAC exists with SMAP; it only allows supervisor access to user pages.
        unsafe { asm!("stac", options(nomem, nostack)) };
    }
    let result = body();
    if smap {
        // SAFETY: CLAC exists with SMAP; it forbids supervisor access to user pages again.
        unsafe { asm!("clac", options(nomem, nostack)) };
    }
    result
}

/// Copies `destination.len()` bytes from user address `source`.
///
/// # Safety
/// `[source, source + len)` must be mapped user-readable in the loaded address space
/// (`mm::user_range::check` with `Direction::Read`).
pub unsafe fn copy_from_user(destination: &mut [u8], source: u64) {
    with_user_access(|| {
        // SAFETY: the caller validated the user range; kernel memory never overlaps it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                source as *const u8,
                destination.as_mut_ptr(),
                destination.len(),
            )
        }
    });
}

/// Copies `source` to user address `destination`.
///
/// # Safety
/// `[destination, destination + len)` must be mapped user-writable in the loaded address space
/// (`mm::user_range::check` with `Direction::Write`).
pub unsafe fn copy_to_user(destination: u64, source: &[u8]) {
    with_user_access(|| {
        // SAFETY: the caller validated the user range; kernel memory never overlaps it.
        unsafe {
            core::ptr::copy_nonoverlapping(source.as_ptr(), destination as *mut u8, source.len())
        }
    });
}
