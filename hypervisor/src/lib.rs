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

pub use boot::{probe, start, VmxSummary as ProbeSummary};
pub use handoff::{
    CpuIds, GuestEntry, HandOff, PhysRange, HYPERVISOR_RANGES, RESERVED_ALIGN, RESERVED_BYTES,
};
pub use vmx::enable::VmxError as ProbeError;
