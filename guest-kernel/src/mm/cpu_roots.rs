//! Per-CPU roots (as Xen's XPTI does for PV guests): each CPU runs on one root for its whole
//! life, and a process switch rewrites the tables one level below it instead of loading
//! another root. Pure: physical memory is a [`PhysMemory`].
//!
//! A CPU's kernel-mode root has the kernel half and, in the lower half, entries for the
//! [`USER_SLOTS`] pointing at the CPU's own directory tables (PDPTs). Its KPTI user-mode root
//! has the template's upper half and the same lower half. A process keeps a private root
//! that no CPU ever loads (its PML4 entries for the user slots point at its own PDPTs); to
//! run it, a CPU copies the entries of those PDPTs into its own ([`load`]), only the entries
//! either process uses. Under `pagetables = locked` the roots are locked like the kernel half
//! and the CPU's directory tables stay guest-writable: the lower half was the guest's before.

use super::address_space::PhysMemory;
use super::layout::KERNEL_PML4_FIRST;
use super::page_table::{self, ACCESSED, ENTRIES, PRESENT, USER, WRITABLE};

/// The PML4 entries user space may use: 0 (program and heap: the low 512 GiB) and 255 (the
/// stack: the top 512 GiB of the lower half).
pub const USER_SLOTS: [usize; 2] = [0, 255];
/// End of slot 0: programs and the heap stay below.
pub const LOW_USER_TOP: u64 = 1 << 39;
/// Start of slot 255.
#[cfg_attr(not(test), allow(dead_code))]
pub const HIGH_USER_BASE: u64 = 255 << 39;

/// Which of [`USER_SLOTS`] holds `virt` (a lower-half address), if any.
pub fn slot_of(virt: u64) -> Option<usize> {
    let pml4 = page_table::index(virt, 4);
    USER_SLOTS.iter().position(|&s| s == pml4)
}

/// Words of [`Used`]: 512 entries per user slot, 64 per word.
const WORDS: usize = USER_SLOTS.len() * ENTRIES / 64;

/// The directory (PDPT) entries a process uses: one bit per entry and user slot, and one
/// summary bit per non-zero word, so a switch visits only the few entries in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Used {
    words: [u64; WORDS],
    summary: u64,
}

const _: () = assert!(WORDS <= 64);

impl Used {
    pub const EMPTY: Self = Self {
        words: [0; WORDS],
        summary: 0,
    };

    pub fn set(&mut self, slot: usize, index: usize) {
        let word = slot * ENTRIES / 64 + index / 64;
        self.words[word] |= 1 << (index % 64);
        self.summary |= 1 << word;
    }

    pub fn contains(&self, slot: usize, index: usize) -> bool {
        self.words[slot * ENTRIES / 64 + index / 64] & (1 << (index % 64)) != 0
    }

    /// Calls `visit(slot, index, in_other)` for every entry in `self` or `other`, ascending.
    fn for_each_union(&self, other: &Self, mut visit: impl FnMut(usize, usize, bool)) {
        let mut summary = self.summary | other.summary;
        while summary != 0 {
            let word = summary.trailing_zeros() as usize;
            summary &= summary - 1;
            let mut bits = self.words[word] | other.words[word];
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (slot, first) = (word / (ENTRIES / 64), (word % (ENTRIES / 64)) * 64);
                visit(slot, first + bit, other.words[word] & (1 << bit) != 0);
            }
        }
    }
}

/// One CPU's roots (physical) and its directory table for each user slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuRoots {
    pub kernel: u64,
    /// The KPTI user-mode root, 0 without KPTI.
    pub user: u64,
    pub tables: [u64; USER_SLOTS.len()],
}

/// Builds a CPU's roots: the kernel root's upper half (`kernel_entries[256..]`), the KPTI
/// `template`'s for the user-mode root, and fresh directory tables for the user slots in
/// both. `None` (everything freed) without memory.
pub fn build(
    memory: &mut impl PhysMemory,
    kernel_entries: &[u64; ENTRIES],
    template: Option<&[u64; ENTRIES]>,
) -> Option<CpuRoots> {
    let mut frames = [0u64; 2 + USER_SLOTS.len()];
    for n in 0..frames.len() {
        match memory.allocate() {
            Some(frame) => frames[n] = frame,
            None => {
                frames[..n].iter().for_each(|&f| memory.free(f));
                return None;
            }
        }
    }
    let [kernel, user, tables @ ..] = frames;
    // Accessed preset: a locked root is read-only in EPT, so the CPU must never need to set it.
    let flags = PRESENT | WRITABLE | USER | ACCESSED;
    for (root, upper) in [(kernel, Some(kernel_entries)), (user, template)] {
        let Some(upper) = upper else {
            memory.free(root);
            continue;
        };
        for (index, &entry) in upper.iter().enumerate().skip(KERNEL_PML4_FIRST) {
            memory.write(root, index, entry);
        }
        for (&slot, &table) in USER_SLOTS.iter().zip(&tables) {
            memory.write(root, slot, page_table::entry(table, flags));
        }
    }
    Some(CpuRoots {
        kernel,
        user: if template.is_some() { user } else { 0 },
        tables,
    })
}

/// What a CPU's directory tables hold now: the process whose entries they are (its private
/// root; 0 for none) and which entries are set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub root: u64,
    pub used: Used,
}

/// The directory table of `slot` in the private root `root`, if mapped.
fn directory(memory: &impl PhysMemory, root: u64, slot: usize) -> Option<u64> {
    let entry = memory.read(root, USER_SLOTS[slot]);
    (entry & PRESENT != 0).then(|| page_table::entry_address(entry))
}

/// Makes the CPU's tables hold process `root` (0: none) whose used entries are `used`:
/// writes every entry either the outgoing or the incoming process uses, nothing else.
/// Returns the number of entries written. The caller flushes the TLB afterwards (the
/// outgoing process's translations are cached under the same root).
pub fn load(
    memory: &mut impl PhysMemory,
    cpu: &CpuRoots,
    loaded: &mut Loaded,
    root: u64,
    used: &Used,
) -> usize {
    let mut sources = [None; USER_SLOTS.len()];
    if root != 0 {
        for (slot, source) in sources.iter_mut().enumerate() {
            *source = directory(memory, root, slot);
        }
    }
    let mut written = 0;
    loaded.used.for_each_union(used, |slot, index, incoming| {
        let entry = match sources[slot] {
            Some(directory) if incoming => memory.read(directory, index),
            _ => 0,
        };
        memory.write(cpu.tables[slot], index, entry);
        written += 1;
    });
    *loaded = Loaded { root, used: *used };
    written
}

/// After a page at `virt` was mapped into the loaded process: copies its directory entry into
/// the CPU's table if that entry is new (the levels below are shared). True if it was.
pub fn sync(memory: &mut impl PhysMemory, cpu: &CpuRoots, loaded: &mut Loaded, virt: u64) -> bool {
    let Some(slot) = slot_of(virt).filter(|_| loaded.root != 0) else {
        return false;
    };
    let index = page_table::index(virt, 3);
    if loaded.used.contains(slot, index) {
        return false;
    }
    let Some(directory) = directory(memory, loaded.root, slot) else {
        return false;
    };
    let entry = memory.read(directory, index);
    if entry & PRESENT == 0 {
        return false;
    }
    memory.write(cpu.tables[slot], index, entry);
    loaded.used.set(slot, index);
    true
}

/// The directory entries process root `root` uses (a scan: once per spawn).
pub fn scan(memory: &impl PhysMemory, root: u64) -> Used {
    let mut used = Used::default();
    for slot in 0..USER_SLOTS.len() {
        if let Some(directory) = directory(memory, root, slot) {
            for index in 0..ENTRIES {
                if memory.read(directory, index) & PRESENT != 0 {
                    used.set(slot, index);
                }
            }
        }
    }
    used
}

#[cfg(test)]
#[path = "cpu_roots_tests.rs"]
mod tests;
