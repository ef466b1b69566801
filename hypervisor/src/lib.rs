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

#[cfg(all(feature = "gdb", feature = "internals"))]
pub mod gdb;
#[cfg(all(feature = "gdb", not(feature = "internals")))]
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

/// The composition root's answer to `arch`'s stubs (see `arch::entry_points`).
struct Rampart;

impl arch::entry_points::Hypervisor for Rampart {
    fn vm_exit(regs: &mut vcpu::GuestRegisters) {
        exits::handle_exit(regs)
    }

    fn nmi_in_root() {
        smp::nmi_in_root()
    }

    fn entry_failed(instruction: &'static str, rflags: u64) -> ! {
        stop::entry_failed(instruction, rflags)
    }

    fn host_fault(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
        stop::host_fault(vector, error, rip, cr2)
    }
}

arch::entry_points::bind!(Rampart);
