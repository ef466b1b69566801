//! The Rampart guest kernel: boots from the firmware's entry contract (`rampart_boot_info`),
//! natively or in VMX non-root under the Rampart hypervisor.
//!
//! `arch` is the only place for `asm!` and `unsafe`; every other module is pure and, on a host
//! target, builds with std and runs its unit tests (`cargo test -p rampart-kernel`). The kernel
//! itself is built for x86_64-unknown-none, where `arch::entry` provides `_start`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![deny(unsafe_code)]
// Host builds only compile the pure modules for their tests; much of them is used by `arch`.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod entry_points;
extern crate alloc;

mod attacks;
mod cmdline;
mod cpu_list;
mod fuzz;
mod hv;
#[cfg(target_os = "none")]
mod hypercall_checks;
#[cfg(test)]
mod layering_tests;
mod line;
mod loader;
mod mm;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod process;
mod sched;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod syscall;
mod time;
mod trap;

/// Host builds are for `cargo test` only: the kernel runs on x86_64-unknown-none.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("rampart-kernel: build with --target x86_64-unknown-none to get the kernel image");
}
