//! The console sessions that run `bench` in the guest shell.

use crate::boot_tests::session::{Session, Step};

const PROMPT: &str = "sh> ";

const BOOT: Step = Step {
    label: "boot-to-prompt",
    send: None,
    expect: &[&["[kernel] ready"], &["[init] starting sh"], &[PROMPT]],
};

const EXIT: Step = Step {
    label: "exit",
    send: Some("exit"),
    expect: &[&["[init] sh exited with code"]],
};

/// `run bench`, for `cargo xtask bench`.
pub const FULL: Session = Session {
    steps: &[
        BOOT,
        Step {
            label: "bench",
            send: Some("run bench"),
            expect: &[&["[sh] bench exited with code"], &[PROMPT]],
        },
        EXIT,
    ],
};

/// `run bench smp`, for the dashboard's boots with several processors.
pub const SMP: Session = Session {
    steps: &[
        BOOT,
        Step {
            label: "bench",
            send: Some("run bench smp"),
            expect: &[&["[sh] bench exited with code"], &[PROMPT]],
        },
        EXIT,
    ],
};

/// `run bench quick`, for the zero-exit boot test.
pub const QUICK: Session = Session {
    steps: &[
        BOOT,
        Step {
            label: "bench",
            send: Some("run bench quick"),
            expect: &[&["[sh] bench exited with code"], &[PROMPT]],
        },
        EXIT,
    ],
};

/// `run bench smp quick`, for the zero-exit boot test on several vCPUs.
pub const SMP_QUICK: Session = Session {
    steps: &[
        BOOT,
        Step {
            label: "bench",
            send: Some("run bench smp quick"),
            expect: &[&["[sh] bench exited with code"], &[PROMPT]],
        },
        EXIT,
    ],
};
