//! `fuzz [N] [SEED]`: asks the kernel to run its exit fuzzer (the `attacks` cargo feature):
//! N (default 1000) random VM-exit operations from ring 0 on every CPU, drawn from SEED
//! (default 1), each checked against what the CPU or the hypercall ABI defines. The kernel
//! prints the seed, per-kind counts and `fuzz: N operations, U unexpected, seed S`; the exit
//! code is 0 only if every outcome was the expected one.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![allow(unsafe_code)]

use rampart_kernel_abi::syscall::{Errno, Syscall};
use rampart_user::{println, sys};

rampart_user::entry!(fuzz_main, "[N] [SEED]: the kernel's VM-exit fuzzer");

const DEFAULT_COUNT: u64 = 1000;
const DEFAULT_SEED: u64 = 1;

fn fuzz_main(args: &str) -> i64 {
    let mut words = args.split_whitespace();
    let mut number = |default| match words.next() {
        None => Some(default),
        Some(word) => word.parse::<u64>().ok(),
    };
    let (Some(count), Some(seed)) = (number(DEFAULT_COUNT), number(DEFAULT_SEED)) else {
        println!("usage: fuzz [N] [SEED]");
        return 2;
    };
    // SAFETY: `Fuzz` takes two numbers and writes no user memory.
    let result = sys::decode(unsafe { sys::raw(Syscall::Fuzz as u64, [count, seed, 0, 0, 0, 0]) });
    match result {
        Ok(code) => code as i64,
        Err(Errno::NoSys) => {
            println!("fuzz: this kernel was built without the `attacks` feature");
            1
        }
        Err(errno) => {
            println!("fuzz: failed: {}", errno.name());
            1
        }
    }
}
