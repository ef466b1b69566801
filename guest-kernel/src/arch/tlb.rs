//! TLB shootdown for kernel-half mappings (SDM Vol. 3A 4.10.5 "Propagation of Paging-Structure
//! Changes to Multiple Processors").
//!
//! Only mappings in the kernel half ever need it: a CPU that stops running a process always
//! loads another CR3 (every process has its own root; no global pages; with KPTI's PCIDs the
//! switch to another process flushes the PCIDs it loads, `arch::kpti`), so stale user
//! translations never survive on a CPU that stops running their process. With PCIDs a kernel
//! translation may be cached under every process's kernel-mode PCID, so the invalidation there
//! is INVPCID all-contexts (or a CR4.PGE toggle), not INVLPG (`kpti::invalidate_kernel_page`). The kernel half is shared by every root, so a kernel mapping removed at
//! run time may still be cached on any CPU: [`flush_everywhere`] invalidates it on all of them
//! by a fixed IPI and waits until each has (rare: the attack suite's alias page; kernel stacks
//! stay mapped when freed).
//!
//! A CPU waiting here (for the lock or for the others) keeps serving requests addressed to it
//! ([`service`]), so two CPUs flushing at once cannot wait for each other with interrupts off.
//! Callers must hold no other lock: a CPU spinning on it with interrupts off could not answer.

// Only the attack suite removes kernel mappings at run time so far.
#![cfg_attr(not(feature = "attacks"), allow(dead_code))]

use super::{kpti, lapic};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

/// Serialises initiators; protects [`ADDRESS`] while requests are out.
static INITIATOR: Mutex<()> = Mutex::new(());
/// The page to invalidate while requests are out.
static ADDRESS: AtomicU64 = AtomicU64::new(0);
/// Bit N set: CPU N has yet to invalidate [`ADDRESS`].
static REQUESTS: AtomicU32 = AtomicU32::new(0);
/// Polls before giving up on a CPU that does not answer (logged, never a hang).
const MAX_POLLS: u64 = 1 << 32;

/// Invalidates `address` on this CPU (index `me`) and on every CPU in `others` (index, local
/// APIC ID), sending each the fixed IPI `vector` and waiting until all have done it. Returns
/// the indexes that did not answer in time as a bit mask (0 = all did).
pub fn flush_everywhere(
    address: u64,
    me: usize,
    others: impl Iterator<Item = (usize, u32)> + Clone,
    vector: u8,
) -> u32 {
    kpti::invalidate_kernel_page(address);
    let mask = others
        .clone()
        .fold(0u32, |mask, (index, _)| mask | 1 << index)
        & !(1 << me);
    if mask == 0 {
        return 0;
    }
    let guard = loop {
        if let Some(guard) = INITIATOR.try_lock() {
            break guard;
        }
        service(me);
        core::hint::spin_loop();
    };
    ADDRESS.store(address, Ordering::SeqCst);
    REQUESTS.fetch_or(mask, Ordering::SeqCst);
    for (index, apic_id) in others.filter(|&(index, _)| index != me) {
        // SAFETY: a fixed IPI with a vector `arch::interrupts` handles (every vector has a stub).
        if !unsafe { lapic::send_ipi(apic_id, lapic::command::fixed(vector)) } {
            REQUESTS.fetch_and(!(1 << index), Ordering::SeqCst);
        }
    }
    let mut polls = 0u64;
    while REQUESTS.load(Ordering::SeqCst) & mask != 0 && polls < MAX_POLLS {
        service(me);
        core::hint::spin_loop();
        polls += 1;
    }
    let late = REQUESTS.fetch_and(!mask, Ordering::SeqCst) & mask;
    drop(guard);
    late
}

/// Invalidates the requested page if CPU `me` has a request outstanding (from the IPI handler,
/// and from CPUs waiting in [`flush_everywhere`]).
pub fn service(me: usize) {
    let bit = 1 << me;
    if REQUESTS.load(Ordering::SeqCst) & bit != 0 {
        kpti::invalidate_kernel_page(ADDRESS.load(Ordering::SeqCst));
        REQUESTS.fetch_and(!bit, Ordering::SeqCst);
    }
}
