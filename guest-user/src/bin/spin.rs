//! `spin NAME N [MS]`: prints `NAME i` for i in 0..N with about MS (default 50) milliseconds of
//! busy CPU work between lines and never yields, so two spins started in the background only
//! interleave if the kernel preempts them.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{count_or, words};
use rampart_user::{println, sys};

rampart_user::entry!(
    spin_main,
    "NAME N [MS]: prints NAME i for i in 0..N, MS ms of busy work apart"
);

const DEFAULT_COUNT: u64 = 10;
const DEFAULT_MS: u64 = 50;
/// Arithmetic iterations between two looks at the clock.
const INNER_LOOP: u64 = 2000;

fn spin_main(args: &str) -> i64 {
    let mut words = words(args);
    let name = words.next().unwrap_or("spin");
    let count = count_or(words.next(), DEFAULT_COUNT);
    let ms = count_or(words.next(), DEFAULT_MS);
    for i in 0..count {
        if i > 0 {
            burn(ms);
        }
        println!("{name} {i}");
    }
    0
}

/// Busy work for `ms` of wall time (uptime): a CPU-bound loop with no yield and no sleep.
fn burn(ms: u64) {
    let until = sys::uptime() + ms;
    let mut x: u64 = 1;
    while sys::uptime() < until {
        for i in 0..INNER_LOOP {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    core::hint::black_box(x);
}
