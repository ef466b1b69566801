//! Rampart: a VMX microhypervisor that runs one guest kernel with its pages protected by EPT.
//!
//! Boot flow: the firmware calls [`probe`] before ExitBootServices (so a missing VT-x is
//! diagnosed while the firmware can still report it), then [`start`] after it.
#![cfg_attr(not(test), no_std)]

pub mod ept;
pub mod handoff;
pub mod vmx;

pub use handoff::{GuestEntry, HandOff, PhysRange, RESERVED_ALIGN, RESERVED_BYTES};

/// Checks that this CPU can run Rampart, without changing any state.
///
/// Returns a one-line summary of the VMX features found, or the reason VMX is unusable.
pub fn probe() -> Result<ProbeSummary, ProbeError> {
    Err(ProbeError)
}

/// A one-line, human readable summary of the VMX capabilities (Display).
#[derive(Debug)]
pub struct ProbeSummary;
impl core::fmt::Display for ProbeSummary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("todo")
    }
}
/// Why VMX is unusable (Display).
#[derive(Debug)]
pub struct ProbeError;
impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("todo")
    }
}

/// Takes over the CPU: own page tables, GDT/IDT, VMX on, EPT, and launches the guest.
///
/// # Safety
/// Call once, after ExitBootServices, with interrupts disabled, with `handoff.reserved` and
/// `handoff.image` owned by the hypervisor and everything `handoff.guest` points to prepared in
/// guest RAM per the entry contract.
pub unsafe fn start(handoff: &HandOff) -> ! {
    let _ = handoff;
    loop {
        core::hint::spin_loop();
    }
}
