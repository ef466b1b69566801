//! What `arch`'s stubs continue in: the hypervisor above `arch`, bound at link time, so `arch`
//! imports nothing above it (the guest kernel's `arch::kernel` does the same).
//!
//! The VM-exit stub, the host NMI and exception stubs and the VM-entry failure paths are asm
//! or `arch` code that must call into the hypervisor. The composition root (`lib.rs`) invokes
//! [`bind!`] with the four functions they continue in, which defines the symbols those stubs
//! call, each a direct call: no function pointer sits on an exit path.

/// `bind!(vm_exit, nmi_in_root, entry_failed, host_fault)`: defines the symbols `arch`'s stubs
/// call, each continuing in the function named (paths from the composition root):
/// - `vm_exit(&mut GuestRegisters)`: a VM exit, on the exit stack (`arch::vm_entry`);
///   returning resumes the guest;
/// - `nmi_in_root()`: an NMI in VMX root (`arch::descriptors`);
/// - `entry_failed(instruction: &'static str, rflags: u64) -> !`: VMLAUNCH or VMRESUME fell
///   through with VMfail;
/// - `host_fault(vector, error, rip, cr2) -> !`: an exception in the hypervisor itself.
///
/// Invoked exactly once (a second invocation is a duplicate-symbol link error, none a
/// missing-symbol one).
macro_rules! bind {
    ($vm_exit:path, $nmi_in_root:path, $entry_failed:path, $host_fault:path) => {
        /// Called by the VM-exit stub (`arch::vm_entry`) with the GPRs it pushed.
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_vm_exit(regs: *mut $crate::vcpu::GuestRegisters) {
            // SAFETY: the stub passes the registers it has just pushed on the exit stack; they
            // stay valid and unaliased until this returns and the stub pops them.
            $vm_exit(unsafe { &mut *regs })
        }

        /// Called by the host NMI stub (`arch::descriptors`).
        #[allow(unsafe_code)] // `no_mangle`: the name the stub calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_nmi_in_root() {
            $nmi_in_root()
        }

        /// Called by `arch` when VMLAUNCH or VMRESUME fails (`launch`: which one).
        #[allow(unsafe_code)] // `no_mangle`: the name `arch` calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_entry_failed(launch: bool, rflags: u64) -> ! {
            $entry_failed(if launch { "VMLAUNCH" } else { "VMRESUME" }, rflags)
        }

        /// Called by the host exception stubs (`arch::descriptors`).
        #[allow(unsafe_code)] // `no_mangle`: the name `arch` calls, defined only here.
        #[no_mangle]
        extern "sysv64" fn rampart_host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
            $host_fault(vector, error, rip, cr2)
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
