//! Rampart: a VMX microhypervisor that runs one guest kernel with its pages protected by EPT.
//!
//! Boot flow: the firmware calls [`probe`] before ExitBootServices (so a missing VT-x is
//! diagnosed while the firmware can still report it), then [`start`] after it with the
//! [`handoff::HandOff`] it built. That and the hand-off types are the whole public face; the
//! modules are layered as `hypervisor/DESIGN.md` "Layering of the hypervisor" says, and this
//! file is the composition root that binds `arch`'s entry points.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

/// Stops the hypervisor cleanly with a formatted reason ([`stop::fatal`]), like `panic!`. Defined
/// before every module so that each can use it.
macro_rules! fatal {
    ($($reason:tt)*) => {
        $crate::stop::fatal(format_args!($($reason)*))
    };
}

// The hand-off contract: what the firmware builds. A leaf.
pub mod handoff;

#[cfg(feature = "gdb")]
mod gdb;
/// The production build's stand-in for the GDB stub: nothing attached, ever.
#[cfg(not(feature = "gdb"))]
#[path = "gdb_off.rs"]
mod gdb;

mod arch;
mod audit;
mod boot;
mod console;
mod cpus;
mod devices;
mod ept;
mod exits;
mod frames;
mod guest_memory;
mod guest_paging;
mod locks;
mod policy;
mod selfcheck;
mod smm;
mod smp;
mod state;
mod stats;
mod stop;
mod vcpu;
mod vmx;

/// What the host fuzz targets (`tests/fuzz`) drive directly, with the `internals` feature (only
/// the crate's own dev-dependency on itself turns it on; the firmware sees none of it).
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::devices::pci;
    pub use crate::ept::{builder, entry};
    pub use crate::exits::{cr_access, ipi, msr, msr_bitmap, xsetbv};
    #[cfg(feature = "gdb")]
    pub use crate::gdb::{framing, monitor};
    pub use crate::guest_paging::walker;
    pub use crate::policy::{layout, operations, pinned, program_text, ProtectedLayout};
    pub use crate::vmx::caps;
}

#[cfg(test)]
mod design_citation_tests;
#[cfg(test)]
mod layering_tests;

pub use boot::{probe, start, VmxSummary as ProbeSummary};
pub use handoff::{
    GuestEntry, HandOff, PhysRange, HYPERVISOR_RANGES, RESERVED_ALIGN, RESERVED_BYTES,
};
pub use vmx::enable::VmxError as ProbeError;

// The composition root's answer to `arch`'s stubs (see `arch::entry_points`).
arch::entry_points::bind!(
    exits::handle_exit,
    smp::nmi_in_root,
    stop::entry_failed,
    stop::host_fault
);
