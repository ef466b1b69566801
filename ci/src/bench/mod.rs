//! `cargo xtask bench`: the performance dashboard. Boots the same build natively and under
//! Rampart on the same Bochs CPU model, runs the guest's `bench` program in each, and writes
//! the comparison (cycles per operation, ratio, exits per operation, boot cost, hypervisor
//! size, EPT bytes) as Markdown and JSON under `target/rampart/bench/`. The zero-exit part is
//! also a boot test (`check`).

pub mod check;
pub mod parse;
mod policy_matrix;
mod run;
pub mod sessions;
mod size;
mod smp_table;
mod table;

pub use run::{run, DEFAULT_SMP_CPUS};
