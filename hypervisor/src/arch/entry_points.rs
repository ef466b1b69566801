//! What `arch`'s stubs continue in: the hypervisor above `arch`, named by one trait and bound
//! at link time, so `arch` imports nothing above it (the guest kernel's `arch::kernel` does the
//! same).
//!
//! The VM-exit stub, the host NMI and exception stubs and the VM-entry failure paths are asm
//! or `arch` code that must call into the hypervisor. The composition root (`lib.rs`)
//! implements [`Hypervisor`] and invokes [`bind!`], which defines the symbols those stubs call,
//! each a direct call: no function pointer sits on an exit path.

use crate::vcpu::GuestRegisters;

/// The hypervisor's side of every way into it from `arch`.
pub trait Hypervisor {
    /// A VM exit (`arch::vm_entry`), on the exit stack with the guest's GPRs; returning
    /// resumes the guest.
    fn vm_exit(regs: &mut GuestRegisters);
    /// An NMI in VMX root (`arch::descriptors`).
    fn nmi_in_root();
    /// VMLAUNCH or VMRESUME (`instruction`) fell through with VMfail; `rflags` after it.
    fn entry_failed(instruction: &'static str, rflags: u64) -> !;
    /// An exception in the hypervisor itself (host IDT).
    fn host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> !;
}

/// `bind!(H)`: defines the symbols `arch`'s stubs call, continuing in `H: Hypervisor`. Invoked
/// exactly once, by the composition root (a second invocation is a duplicate-symbol link error,
/// none a missing-symbol one).
macro_rules! bind {
    ($hypervisor:ty) => {
        /// Called by the VM-exit stub (`arch::vm_entry`) with the GPRs it pushed.
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_vm_exit(regs: *mut $crate::vcpu::GuestRegisters) {
            // SAFETY: the stub passes the registers it has just pushed on the exit stack; they
            // stay valid and unaliased until this returns and the stub pops them.
            let regs = unsafe { &mut *regs };
            <$hypervisor as $crate::arch::entry_points::Hypervisor>::vm_exit(regs)
        }

        /// Called by the host NMI stub (`arch::descriptors`).
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_nmi_in_root() {
            <$hypervisor as $crate::arch::entry_points::Hypervisor>::nmi_in_root()
        }

        /// Called by `arch` when VMLAUNCH or VMRESUME fails (`launch`: which one).
        #[allow(unsafe_code)] // `no_mangle`: the name `arch` calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_entry_failed(launch: bool, rflags: u64) -> ! {
            let instruction = if launch { "VMLAUNCH" } else { "VMRESUME" };
            <$hypervisor as $crate::arch::entry_points::Hypervisor>::entry_failed(
                instruction,
                rflags,
            )
        }

        /// Called by the host exception stubs (`arch::descriptors`).
        #[allow(unsafe_code)] // `no_mangle`: the name `arch` calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
            <$hypervisor as $crate::arch::entry_points::Hypervisor>::host_fault(
                vector, error, rip, cr2,
            )
        }
    };
}
pub(crate) use bind;

extern "sysv64" {
    /// Defined by [`bind!`].
    pub(super) fn rampart_entry_failed(launch: bool, rflags: u64) -> !;
    /// Defined by [`bind!`].
    pub(super) fn rampart_host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> !;
}
