//! `pingpong [N]`: N (default 1,000) yields against a partner process that yields in a loop,
//! bracketed by two ExitCount reads: every yield switches processes (address space, kernel
//! stack), and under Rampart none of it may cause a VM exit. `pingpong partner` is the partner.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{parse_int, split_first};
use rampart_user::{println, sys, Errno};

rampart_user::entry!(pingpong_main);

const DEFAULT_YIELDS: i64 = 1_000;

fn pingpong_main(args: &str) -> i64 {
    let (first, _) = split_first(args);
    if first == "partner" {
        loop {
            sys::yield_now();
        }
    }
    let yields = parse_int(first).unwrap_or(DEFAULT_YIELDS).max(0) as u64;
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
    let code = match (before, after) {
        (Ok(before), Ok(after)) => {
            let delta = after.wrapping_sub(before) as i64;
            println!(
                "pingpong: {yields} yields, exits before={before} after={after} delta={delta}"
            );
            0
        }
        (Err(Errno::NoSys), _) => {
            println!("pingpong: {yields} yields, exits n/a (no hypervisor)");
            0
        }
        (Err(err), _) | (_, Err(err)) => {
            println!("pingpong: exit_count failed: {}", err.name());
            1
        }
    };
    if let Err(err) = stopped {
        println!("pingpong: stopping the partner failed: {}", err.name());
        return 1;
    }
    code
}
