//! VMX: capabilities, controls, exit reasons and the VMCS.

pub mod caps;
pub mod controls;
pub mod enable;
#[cfg(any(test, feature = "gdb"))]
pub mod entry_checks;
pub mod exit_reason;
pub mod instruction_error;
pub mod instruction_info;
pub mod msr;
pub mod qualification;
pub mod setup;
pub mod vmcs;
pub mod vmcs_image;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod kvm_fixture_derivation_tests;
#[cfg(test)]
mod kvm_fixture_tests;
