//! Rampart: a VMX microhypervisor that runs one guest kernel with its pages protected by EPT.
//!
//! Boot flow: the firmware calls [`probe`] before ExitBootServices (so a missing VT-x is
//! diagnosed while the firmware can still report it), then [`start`] after it with the
//! [`handoff::HandOff`] it built. That and the hand-off types are the whole public face; the
//! modules are layered as `hypervisor/DESIGN.md` "Layering of the hypervisor" says, and this
//! file is the composition root that binds `arch`'s entry points.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

// The hand-off contract: what the firmware builds. A leaf.
pub mod handoff;

/// Modules the host fuzz targets (`tests/fuzz`) drive directly: private, or public with the
/// `internals` feature, which only the crate's own dev-dependency on itself turns on.
macro_rules! internal {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(feature = "internals")]
            pub mod $name;
            #[cfg(not(feature = "internals"))]
            mod $name;
        )*
    };
}
internal!(devices, ept, exits, guest_paging, policy, vmx);

#[cfg(feature = "gdb")]
internal!(gdb);
/// The production build's stand-in for the GDB stub: nothing attached, ever.
#[cfg(not(feature = "gdb"))]
#[path = "gdb_off.rs"]
mod gdb;

mod arch;
mod audit;
mod boot;
mod console;
mod cpus;
mod frames;
mod guest_memory;
mod locks;
mod selfcheck;
mod smm;
mod smp;
mod state;
mod stats;
mod stop;
mod vcpu;

#[cfg(test)]
mod design_citation_tests;
#[cfg(test)]
mod layering_tests;

pub use boot::{probe, start, VmxSummary as ProbeSummary};
pub use handoff::{
    CpuIds, GuestEntry, HandOff, PhysRange, HYPERVISOR_RANGES, RESERVED_ALIGN, RESERVED_BYTES,
};
pub use vmx::enable::VmxError as ProbeError;

// The composition root's answer to `arch`'s stubs (see `arch::entry_points`).
arch::entry_points::bind!(
    exits::handle_exit,
    smp::nmi_in_root,
    stop::entry_failed,
    stop::host_fault
);
