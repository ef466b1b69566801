//! VMX: capabilities, controls, exit reasons and the VMCS.

pub mod caps;
pub mod controls;
pub mod exit_reason;
pub mod instruction_error;
pub mod msr;
pub mod qualification;

#[cfg(test)]
mod fixture_tests;
