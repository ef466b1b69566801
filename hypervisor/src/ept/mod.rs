//! Extended page tables: entry encoding, the table builder, and the guest-physical layout.

pub mod builder;
pub mod entry;
pub mod layout;
