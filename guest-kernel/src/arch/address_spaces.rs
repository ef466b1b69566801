//! Kernel page-table integrity under Rampart (`pagetables = locked`): the lock of the kernel
//! half of every CPU's roots (`LockKernelMappings`). Process switches never load CR3 after
//! it (per-CPU roots, `arch::cpu_roots`), so there is nothing else to ask the hypervisor.
//!
//! Natively and under `pagetables = off` nothing here calls the hypervisor.

use super::hypercall;
use rampart_hv_abi::{CpuRoots, HypercallError};

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

/// Locks the kernel half of every CPU's roots (`roots`: one entry per started CPU, each on
/// its kernel-mode root) with page tables inside `[start, start + length)` left writable. Call
/// once, after the entry-point locks.
pub fn lock(start: u64, length: u64, roots: &[CpuRoots]) -> LockOutcome {
    let Some(rampart) = hypercall::rampart() else {
        return LockOutcome::NoHypervisor;
    };
    match rampart.lock_kernel_mappings(start, length, roots) {
        0 => LockOutcome::Locked,
        result if result == HypercallError::NotSupported as i64 => LockOutcome::PolicyOff,
        error => LockOutcome::Failed(error),
    }
}
