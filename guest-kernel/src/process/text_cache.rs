//! Shared program text. The first process of a program has its text pages granted execute by
//! the hypervisor (one `GrantExecute` VMCALL per page, hypervisor/DESIGN.md invariant 3); later
//! processes map the same frames read-only, so spawning a program again causes no VM exit. Cached
//! frames stay R-X in EPT and are never freed (bounded by the initrd's text), and since the initrd
//! is measured and read-only, an initrd offset always names the same bytes. Natively the frames
//! are shared the same way, so both modes do the same work.

use alloc::collections::BTreeMap;
use spin::Mutex;

/// Initrd offset of a text page -> the frame holding that page.
static CACHE: Mutex<BTreeMap<u64, u64>> = Mutex::new(BTreeMap::new());

/// The frame already holding the text page at initrd `offset`, if any.
pub fn lookup(offset: u64) -> Option<u64> {
    CACHE.lock().get(&offset).copied()
}

/// Records `frame` (granted execute where Rampart runs) as the text page at `offset`.
pub fn insert(offset: u64, frame: u64) {
    CACHE.lock().insert(offset, frame);
}

/// Whether `frame` is a cached text frame (which an exiting process must not free).
pub fn holds(frame: u64) -> bool {
    CACHE.lock().values().any(|&cached| cached == frame)
}
