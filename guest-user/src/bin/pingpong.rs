//! `pingpong [N]`: N (default 1,000) yields against a partner process that yields in a loop,
//! bracketed by two ExitCount reads: every yield switches processes (address space, kernel
//! stack), and under Rampart none of it may cause a VM exit. `pingpong partner` is the partner.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{count_or, split_first};
use rampart_user::bench::ExitDelta;
use rampart_user::{println, sys};

rampart_user::entry!(
    pingpong_main,
    "[N]: N yields against a partner process, VM exits counted"
);

const DEFAULT_YIELDS: u64 = 1_000;

fn pingpong_main(args: &str) -> i64 {
    let (first, _) = split_first(args);
    if first == "partner" {
        loop {
            sys::yield_now();
        }
    }
    let yields = count_or(Some(first), DEFAULT_YIELDS);
    let partner = match sys::spawn("pingpong", "partner") {
        Ok(pid) => pid,
        Err(err) => {
            println!("pingpong: cannot start the partner: {}", err.name());
            return 1;
        }
    };
    // Let the partner reach its loop so every measured yield is a real switch.
    sys::yield_now();
    let before = sys::exit_count();
    for _ in 0..yields {
        sys::yield_now();
    }
    let after = sys::exit_count();
    let stopped = sys::kill(partner).and_then(|()| sys::wait(Some(partner)));
    let delta = ExitDelta {
        program: "pingpong",
        count: yields,
        unit: "yields",
        before,
        after,
    };
    println!("{delta}");
    let code = delta.exit_code();
    if let Err(err) = stopped {
        println!("pingpong: stopping the partner failed: {}", err.name());
        return 1;
    }
    code
}
