//! Hypervisor detection (CPUID) and Rampart hypercalls (VMCALL), per `rampart_hv_abi`.

use super::cpu;
use crate::hv::Detection;
use core::arch::asm;
use rampart_hv_abi::{Hypercall, CPUID_LEAF_VENDOR};

/// A hypercall number the ABI will never assign: used to check that unknown numbers fail
/// cleanly with `NotSupported`.
pub const UNASSIGNED_NUMBER: u64 = 0xdead;

/// Proof that the Rampart hypervisor is present, so VMCALL exits to it instead of raising #UD.
/// Only [`detect`] makes one.
pub struct Rampart(());

/// Detects the hypervisor; returns the hypercall handle if it is Rampart.
pub fn detect() -> (Detection, Option<Rampart>) {
    let detection = Detection::classify(cpu::cpuid(1, 0).ecx, || {
        let vendor = cpu::cpuid(CPUID_LEAF_VENDOR, 0);
        (vendor.ebx, vendor.ecx, vendor.edx)
    });
    let handle = (detection == Detection::Rampart).then_some(Rampart(()));
    (detection, handle)
}

impl Rampart {
    /// VMCALL with RAX = `number` and all argument registers zero; returns RAX.
    fn call(&self, number: u64) -> i64 {
        let result: u64;
        // SAFETY: Rampart is present (this handle exists), so VMCALL exits to it; the ABI
        // preserves every register except RAX. Only numbers without pointer arguments reach
        // here (see the callers), so the hypervisor writes no guest memory.
        unsafe {
            asm!(
                "vmcall",
                inout("rax") number => result,
                in("rdi") 0u64, in("rsi") 0u64, in("rdx") 0u64, in("r10") 0u64,
                options(nostack)
            )
        };
        result as i64
    }

    /// `Hypercall::Version`: the hypercall ABI version.
    pub fn version(&self) -> i64 {
        self.call(Hypercall::Version as u64)
    }

    /// `Hypercall::LogExitStats`: the hypervisor prints its VM-exit counters.
    pub fn log_exit_stats(&self) -> i64 {
        self.call(Hypercall::LogExitStats as u64)
    }

    /// A call with [`UNASSIGNED_NUMBER`]; the hypervisor must answer `NotSupported`.
    pub fn call_unassigned(&self) -> i64 {
        self.call(UNASSIGNED_NUMBER)
    }

    /// `Hypercall::Shutdown`: stops the virtual machine. Returns the error if it refuses.
    pub fn shutdown(self) -> i64 {
        self.call(Hypercall::Shutdown as u64)
    }
}
