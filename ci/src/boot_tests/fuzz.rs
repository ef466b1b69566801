//! The exit fuzzer in the shell sessions: `run fuzz 5000 1` (2000 with several CPUs, where
//! Bochs takes about 3 times as long per operation) before the attack suite must end with
//! every outcome expected (the kernel's contract in guest-kernel/src/fuzz/); the attack
//! suite, `hello` and the spin after it show the shell and the kernel survived it.

use super::session::Step;

pub const FUZZ_STEP: Step = Step {
    label: "fuzz",
    send: Some("run fuzz 5000 1"),
    expect: &[
        &["fuzz: 5000 operations, 0 unexpected, seed 1"],
        &["[sh] fuzz exited with code 0"],
        &["sh> "],
    ],
};

/// [`FUZZ_STEP`] for the sessions with several CPUs (one fuzz thread per CPU).
pub const FUZZ_SMP_STEP: Step = Step {
    label: "fuzz",
    send: Some("run fuzz 2000 1"),
    expect: &[
        &["fuzz: 2000 operations, 0 unexpected, seed 1"],
        &["[sh] fuzz exited with code 0"],
        &["sh> "],
    ],
};
