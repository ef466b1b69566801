//! The only place for raw instructions: descriptor tables, host paging, the VM-entry and
//! VM-exit stubs, and instructions the `x86` crate does not wrap.
#![allow(unsafe_code)]

pub mod ap_trampoline;
pub mod apic;
pub mod descriptors;
pub mod entry_points;
pub mod host_paging;
pub mod instructions;
pub mod msrs;
pub mod vm_entry;
