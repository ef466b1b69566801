//! Host-side fuzz targets for the hypervisor's parsers of guest and debugger input and its
//! pure filters (issue 13): property tests on stable Rust (proptest), run by `cargo test`.
//!
//! Each target runs a modest number of cases by default; `RAMPART_FUZZ_CASES=N cargo test -p
//! rampart-hypervisor --test fuzz` runs N cases per target (README "Robustness").

mod cr;
mod gdb;
mod hypercall;
mod ipi;
mod msr;
mod pci;
mod program_text;
mod walker;

use rampart_fuzz::config;
