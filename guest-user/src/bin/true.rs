//! `true`: does nothing and exits 0 (the smallest program, for spawn benchmarks).
#![cfg_attr(target_os = "none", no_std, no_main)]

rampart_user::entry!(true_main, "does nothing and exits 0");

fn true_main(_: &str) -> i64 {
    0
}
