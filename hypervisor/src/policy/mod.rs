//! The protection policy: which rights each guest-physical page has, and which changes the
//! guest may ask for (hypervisor/DESIGN.md "Threat model and invariants").
//!
//! Pure logic over a [`PageTable`] (the EPT in the hypervisor, a vector in tests): the
//! initial permissions from the measured kernel image, execute grants, revocations and
//! `ProtectRange`, each keeping W^X on every page and never loosening a lock.
#![forbid(unsafe_code)]

pub mod kernel_mappings;
pub mod layout;
pub mod operations;
pub mod pinned;
pub mod program_text;
pub mod violation;

#[cfg(test)]
mod kernel_mappings_prop_tests;
#[cfg(test)]
mod proptests;

pub use layout::{ProtectedLayout, SegmentKind};
