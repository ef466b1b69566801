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

use proptest::test_runner::Config;

/// Cases per target: `RAMPART_FUZZ_CASES` if set, else `default`. No regression files are
/// written into the source tree; a failure prints its minimal input instead.
pub fn config(default: u32) -> Config {
    let cases = std::env::var("RAMPART_FUZZ_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
