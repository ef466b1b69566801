//! The guest kernel's interface to ring 3 and to the runner that packs programs.
//!
//! - [`syscall`]: numbers, calling convention and error codes.
//! - [`initrd`]: the boot-module archive holding the user programs.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod initrd;
pub mod syscall;
