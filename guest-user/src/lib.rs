//! The ring-3 runtime of Rampart's user programs: entry point, panic handler, system calls,
//! console printing and line input. Each program in `src/bin/` names its main function with
//! [`entry!`]. The ABI (numbers, errno, ProcessInfo) is `rampart_kernel_abi::syscall`.
//!
//! On x86_64-unknown-none this is the real runtime; on a host target the crate only builds
//! (the `syscall` instruction is emitted but never run) so `cargo check --workspace` and the
//! pure modules' unit tests work there.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod args;
pub mod bench;
pub mod console;
pub mod fmt;
pub mod heap;
pub mod process;
#[cfg(target_os = "none")]
mod rt;
pub mod sys;
pub mod tsc;

pub use rampart_kernel_abi::about;
pub use rampart_kernel_abi::syscall::{Errno, ProcessInfo, EXIT_FAULTED, EXIT_KILLED};

/// Declares the program's main function, `fn(args: &str) -> i64` (the exit code), which the
/// runtime's `_start` calls with the space-separated argument string, and its one-line
/// description (at most [`about::MAX_TEXT`] bytes), which the shell's `help` lists: a record at
/// the start of the program's read-only segment (`user.ld`), read by the kernel.
#[macro_export]
macro_rules! entry {
    ($main:path, $about:expr) => {
        #[cfg(target_os = "none")]
        #[used]
        #[link_section = ".rampart_about"]
        static RAMPART_ABOUT: [u8; $crate::about::HEADER + $about.len()] =
            $crate::about::record($about);

        #[cfg(target_os = "none")]
        #[no_mangle]
        fn rampart_user_main(args: &str) -> i64 {
            $main(args)
        }

        /// Host builds only type-check the program.
        #[cfg(not(target_os = "none"))]
        fn main() {
            let _: fn(&str) -> i64 = $main;
        }
    };
}
