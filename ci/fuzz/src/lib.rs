//! What every host fuzz target shares (`hypervisor/tests/fuzz`, `firmware/loader/tests/fuzz`,
//! `guest-kernel/abi/tests/fuzz.rs`): how many cases to run and where failures go.

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
