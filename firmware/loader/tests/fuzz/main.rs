//! Host-side fuzz targets for the firmware's parsers of outside input (issue 13): property
//! tests on stable Rust (proptest), so they run in every `cargo test`.
//!
//! Each target runs a modest number of cases by default; `RAMPART_FUZZ_CASES=N cargo test
//! --test fuzz` runs N cases per target (see README "Robustness").

mod config;
mod elf;
#[path = "../support/elf_builder.rs"]
mod elf_builder;
mod stamp;

use rampart_fuzz::config;
