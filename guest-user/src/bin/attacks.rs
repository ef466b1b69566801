//! `attacks`: asks the kernel to run its attack suite (the "compromised kernel" of the
//! `attacks` cargo feature), which prints one table row per attack and a summary line.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![allow(unsafe_code)]

use rampart_kernel_abi::syscall::{Errno, Syscall};
use rampart_user::{println, sys};

rampart_user::entry!(
    attacks_main,
    "the kernel's attack suite: each attack and what stopped it"
);

fn attacks_main(_args: &str) -> i64 {
    // SAFETY: `Attacks` takes no arguments and writes no user memory.
    let result = sys::decode(unsafe { sys::raw(Syscall::Attacks as u64, [0; 6]) });
    match result {
        Ok(_) => 0,
        Err(Errno::NoSys) => {
            println!("attacks: this kernel was built without the `attacks` feature");
            1
        }
        Err(errno) => {
            println!("attacks: the suite failed: {}", errno.name());
            1
        }
    }
}
