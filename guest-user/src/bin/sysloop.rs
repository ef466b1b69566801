//! `sysloop [N]`: N (default 10,000) getpid system calls bracketed by two ExitCount reads. Under
//! Rampart the delta must be 0: system calls never leave VMX non-root.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{count_or, words};
use rampart_user::bench::ExitDelta;
use rampart_user::{println, sys};

rampart_user::entry!(sysloop_main, "[N]: N getpid system calls, VM exits counted");

const DEFAULT_CALLS: u64 = 10_000;
/// Milliseconds to wait before measuring: the counter is the whole machine's, and under
/// `pagetables = locked` the shell's CPU switching to its idle context once the shell waits is
/// a checked CR3 load (one exit) that must not land inside the loop on several CPUs.
const SETTLE_MS: u64 = 20;

fn sysloop_main(args: &str) -> i64 {
    let calls = count_or(words(args).next(), DEFAULT_CALLS);
    sys::sleep(SETTLE_MS);
    let before = sys::exit_count();
    let mut sum = 0u64;
    for _ in 0..calls {
        sum = sum.wrapping_add(sys::getpid());
    }
    let after = sys::exit_count();
    core::hint::black_box(sum);
    let delta = ExitDelta {
        program: "sysloop",
        count: calls,
        unit: "syscalls",
        before,
        after,
    };
    println!("{delta}");
    delta.exit_code()
}
