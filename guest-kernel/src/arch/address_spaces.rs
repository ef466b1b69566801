//! Kernel page-table integrity under Rampart (`pagetables = locked`): the lock of the kernel
//! half (`LockKernelMappings`), and the process roots the hypervisor knows: registered when
//! built, their lower-half entries written by `SetRootEntry`, unregistered before the frame is
//! freed, or kept on the deferred list while the hypervisor answers `Busy`.
//!
//! Natively and under `pagetables = off` nothing here calls the hypervisor: roots are ordinary
//! frames written through the direct map.

use super::hypercall;
use super::log;
use crate::mm::deferred_roots::{DeferredRoots, Release};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use rampart_hv_abi::HypercallError;
use spin::Mutex;

/// Set once `LockKernelMappings` succeeded (never cleared: the lock is one-way).
static LOCKED: AtomicBool = AtomicBool::new(false);
/// Roots the hypervisor would not release yet.
static DEFERRED: Mutex<DeferredRoots> = Mutex::new(DeferredRoots::new());
/// `DEFERRED`'s length, read without the lock (the idle loop checks it on every pass).
static DEFERRED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// What `lock` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    Locked,
    /// The hypervisor's boot policy is `pagetables = off`.
    PolicyOff,
    NoHypervisor,
    /// Any other answer (an error code): the boot fails.
    Failed(i64),
}

/// Locks the kernel half of the current address space (the kernel root, on every CPU) with
/// page tables inside `[start, start + length)` left writable. Call once, after the entry-point
/// locks, with every CPU started and on the kernel root.
pub fn lock(start: u64, length: u64) -> LockOutcome {
    let Some(rampart) = hypercall::rampart() else {
        return LockOutcome::NoHypervisor;
    };
    // Under KPTI the user-mode kernel half (the template every user-mode root shares) is
    // locked too.
    let template = crate::mm::kpti::template_root().unwrap_or(0);
    match rampart.lock_kernel_mappings(start, length, template) {
        0 => {
            LOCKED.store(true, Ordering::SeqCst);
            LockOutcome::Locked
        }
        result if result == HypercallError::NotSupported as i64 => LockOutcome::PolicyOff,
        error => LockOutcome::Failed(error),
    }
}

/// Whether the kernel half is locked (process roots are then registered).
pub fn locked() -> bool {
    LOCKED.load(Ordering::Relaxed)
}

/// The hypercall handle while locked.
fn locked_rampart() -> Option<hypercall::Rampart> {
    if locked() {
        hypercall::rampart()
    } else {
        None
    }
}

/// Registers a new process's roots (kernel-mode, and the KPTI user-mode one or 0) if the
/// kernel half is locked. Returns the hypervisor's error if it refuses (the roots stay
/// ordinary frames).
pub fn register(root: u64, user_root: u64) -> Result<(), i64> {
    match locked_rampart().map(|r| r.register_address_space(root, user_root)) {
        None | Some(0) => Ok(()),
        Some(error) => Err(error),
    }
}

/// Writes lower-half entry `index` of registered root `root` through the hypervisor. `false`
/// if not locked (the caller writes it itself). A refusal is a kernel bug: the entry would be
/// missing, so it panics.
pub fn set_root_entry(root: u64, index: usize, value: u64) -> bool {
    let Some(rampart) = locked_rampart() else {
        return false;
    };
    let result = rampart.set_root_entry(root, index as u64, value);
    assert!(
        result == 0,
        "SetRootEntry({root:#x}, {index}, {value:#x}) refused: {result}"
    );
    true
}

/// Unregisters `root` and returns `true` if the frame may be freed now. While locked: `Busy`
/// keeps it on the deferred list (freed by a later [`retry_deferred`]); another error leaks it
/// (reported). Not locked: always `true`.
pub fn release(root: u64, partner: u64) -> bool {
    let Some(rampart) = locked_rampart() else {
        return true;
    };
    match answer(rampart.release_address_space(root), root) {
        Release::Released => true,
        Release::Busy => {
            let mut deferred = DEFERRED.lock();
            if !deferred.push(root, partner) {
                log::line(format_args!(
                    "deferred root list full: root {root:#x} leaked"
                ));
            }
            DEFERRED_COUNT.store(deferred.len(), Ordering::SeqCst);
            false
        }
        Release::Refused => false,
    }
}

/// Retries the deferred roots, handing each released one to `free`. Costs nothing (no
/// hypercall, no lock) while the list is empty.
pub fn retry_deferred(mut free: impl FnMut(u64)) {
    if DEFERRED_COUNT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let Some(rampart) = locked_rampart() else {
        return;
    };
    let mut deferred = DEFERRED.lock();
    let release = |root| answer(rampart.release_address_space(root), root);
    deferred.retry(release, &mut free);
    DEFERRED_COUNT.store(deferred.len(), Ordering::SeqCst);
}

/// The meaning of a `ReleaseAddressSpace` result; reports a refusal.
fn answer(result: i64, root: u64) -> Release {
    match result {
        0 => Release::Released,
        r if r == HypercallError::Busy as i64 => Release::Busy,
        error => {
            log::line(format_args!(
                "ReleaseAddressSpace({root:#x}) refused: {error}; frame leaked"
            ));
            Release::Refused
        }
    }
}
