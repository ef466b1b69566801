//! Rampart: a VMX microhypervisor that runs one guest kernel with its pages protected by EPT.
//!
//! Boot flow: the firmware calls [`probe`] before ExitBootServices (so a missing VT-x is
//! diagnosed while the firmware can still report it), then [`start`] after it. Layout: `arch`
//! (raw instructions), `vmx` (capabilities, controls, VMCS), `ept`, `exits`, `boot`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod arch;
pub mod audit;
mod boot;
pub mod console;
pub mod devices;
pub mod ept;
pub mod exits;
pub mod frames;
#[cfg(feature = "gdb")]
pub mod gdb;
/// The production build's stand-in for the GDB stub: nothing attached, ever.
#[cfg(not(feature = "gdb"))]
#[path = "gdb_off.rs"]
pub mod gdb;
pub mod guest_memory;
pub mod handoff;
pub mod policy;
pub mod selfcheck;
pub mod smm;
pub mod smp;
pub mod state;
pub mod stats;
pub mod vcpu;
pub mod vmx;

pub use boot::VmxSummary as ProbeSummary;
pub use handoff::{
    CpuIds, GuestEntry, HandOff, PhysRange, HYPERVISOR_RANGES, RESERVED_ALIGN, RESERVED_BYTES,
};
pub use vmx::enable::VmxError as ProbeError;

/// Checks that this CPU can run Rampart, without changing any state: CPUID, IA32_FEATURE_CONTROL,
/// capability MSRs and control fitting. Callable under UEFI boot services.
pub fn probe() -> Result<ProbeSummary, ProbeError> {
    boot::probe()
}

/// Takes over the CPU: own stack, page tables, GDT/IDT, VMX on, EPT, and launches the guest.
///
/// # Safety
/// Call once, after ExitBootServices, with interrupts disabled, at CPL0 on an identity-mapped
/// address space; `handoff.reserved` and `handoff.image` must belong to the hypervisor alone,
/// `handoff.serial_port` must be a 16550 UART, and everything `handoff.guest` points to must be
/// prepared in guest RAM per the entry contract.
#[allow(unsafe_code)]
pub unsafe fn start(handoff: &HandOff) -> ! {
    // SAFETY: forwarded contract.
    unsafe { boot::start(handoff) }
}
