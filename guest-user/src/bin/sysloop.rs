//! `sysloop [N]`: N (default 10,000) getpid system calls bracketed by two ExitCount reads. Under
//! Rampart the delta must be 0: system calls never leave VMX non-root.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{parse_int, words};
use rampart_user::{println, sys, Errno};

rampart_user::entry!(sysloop_main);

const DEFAULT_CALLS: i64 = 10_000;

fn sysloop_main(args: &str) -> i64 {
    let calls = words(args)
        .next()
        .and_then(parse_int)
        .unwrap_or(DEFAULT_CALLS)
        .max(0) as u64;
    let before = sys::exit_count();
    let mut sum = 0u64;
    for _ in 0..calls {
        sum = sum.wrapping_add(sys::getpid());
    }
    let after = sys::exit_count();
    core::hint::black_box(sum);
    match (before, after) {
        (Ok(before), Ok(after)) => {
            let delta = after.wrapping_sub(before) as i64;
            println!(
                "sysloop: {calls} syscalls, exits before={before} after={after} delta={delta}"
            );
            0
        }
        (Err(Errno::NoSys), _) => {
            println!("sysloop: {calls} syscalls, exits n/a (no hypervisor)");
            0
        }
        (Err(err), _) | (_, Err(err)) => {
            println!("sysloop: exit_count failed: {}", err.name());
            1
        }
    }
}
