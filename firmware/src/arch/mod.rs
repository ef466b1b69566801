//! The only hardware-touching code of the firmware: port I/O, halting, the native jump.
#![allow(unsafe_code)]

pub mod cpu;
pub mod native_entry;
pub mod serial;
