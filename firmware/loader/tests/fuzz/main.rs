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
