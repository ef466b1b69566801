//! Extended page tables: entry encoding, the table builder, and the guest-physical layout.
#![forbid(unsafe_code)]

pub mod builder;
pub mod entry;
pub mod layout;
