//! Fresh heap pages for the first-touch benchmark: pages just added above the break, which no
//! Rust value refers to, written through `asm!` so the compiler never sees a reference to them.
#![allow(unsafe_code)]

use crate::sys;
use crate::Errno;

const PAGE_SIZE: u64 = 4096;

/// `count` pages this program added above its break; [`Fresh::release`] gives them back.
pub struct Fresh {
    start: u64,
    count: u64,
}

impl Fresh {
    /// Moves the break up by `count` whole pages (the kernel maps them on first touch).
    pub fn grow(count: u64) -> Result<Fresh, Errno> {
        let old = sys::brk(0)?;
        let start = old.next_multiple_of(PAGE_SIZE);
        sys::brk(start + count * PAGE_SIZE)?;
        Ok(Fresh { start, count })
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes one byte at the start of page `index` (the first write faults the page in).
    pub fn touch(&self, index: u64) {
        assert!(index < self.count, "page {index} of {}", self.count);
        let address = self.start + index * PAGE_SIZE;
        // Should someone have shrunk the break meanwhile, the write faults and the kernel ends
        // the process; memory safety is not at stake either way.
        // SAFETY: `address` is in `[start, start + count pages)` (asserted), heap this `Fresh`
        // added above the break: memory the kernel maps on first touch and no Rust object
        // occupies (the runtime has no allocator), so the write aliases nothing.
        unsafe {
            core::arch::asm!(
                "mov byte ptr [{address}], 1",
                address = in(reg) address,
                options(nostack, preserves_flags),
            );
        }
    }

    /// Moves the break back down; the kernel frees the pages touched.
    pub fn release(self) -> Result<(), Errno> {
        sys::brk(self.start).map(|_| ())
    }
}
