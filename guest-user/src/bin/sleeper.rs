//! `sleeper MS`: sleeps MS milliseconds and reports how long it really slept (by uptime).
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{count_or, words};
use rampart_user::{println, sys};

rampart_user::entry!(
    sleeper_main,
    "MS: sleeps MS milliseconds, reports how long it slept"
);

const DEFAULT_MS: u64 = 500;

fn sleeper_main(args: &str) -> i64 {
    let asked = count_or(words(args).next(), DEFAULT_MS);
    let start = sys::uptime();
    sys::sleep(asked);
    let slept = sys::uptime().saturating_sub(start);
    println!("sleeper: slept {slept} ms (asked {asked})");
    0
}
