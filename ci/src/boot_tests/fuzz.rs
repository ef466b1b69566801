//! The exit fuzzer in the shell sessions: `run fuzz 5000 1` before the attack suite must end
//! with every outcome expected (the kernel's contract in guest-kernel/src/fuzz/); the attack
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
