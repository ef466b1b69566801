//! `hello [ARGS]`: greets from ring 3 with its pid and arguments.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::{println, sys};

rampart_user::entry!(
    hello_main,
    "[ARGS]: greets from ring 3 with its pid and arguments"
);

fn hello_main(args: &str) -> i64 {
    println!("Hello from ring 3! pid={} args=\"{}\"", sys::getpid(), args);
    0
}
