//! Rampart firmware: the UEFI application that discovers, loads and measures the guest, then
//! hands off to the hypervisor (hv mode) or jumps to the guest kernel (native mode).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod arch;
mod discover;
mod fail;
mod flow;
mod handoff;
mod load;
mod log;
mod panic;

use uefi::{entry, Status};

#[entry]
fn main() -> Status {
    flow::run()
}
