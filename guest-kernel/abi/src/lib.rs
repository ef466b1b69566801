//! The guest kernel's interface to ring 3 and to the runner that packs programs.
//!
//! - [`syscall`]: numbers, calling convention and error codes.
//! - [`initrd`]: the boot-module archive holding the user programs (defined with the boot
//!   contract in `rampart-boot-info`, re-exported here).
//! - [`about`]: the one-line description each program carries in its ELF.
//!
//! Process entry (ring 3, as the kernel starts every program): RIP = `e_entry`; RDI = user
//! address of the argument string given to `spawn` (UTF-8, space separated, program name not
//! included; not NUL terminated), RSI = its length in bytes; RSP = 16-byte aligned, just below
//! the argument string at the top of a 64 KiB stack ending at `0x0000_7fff_ffff_f000`;
//! RFLAGS.IF = 1; all other general-purpose registers zero. The heap (`brk`) starts at the
//! page after the highest PT_LOAD segment. Programs are static ET_EXEC x86-64 ELFs whose
//! segments lie in the user half above page 0, with no segment both writable and executable.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

pub mod about;
/// The initrd format is part of the boot contract (the hypervisor reads it too).
pub use rampart_boot_info::initrd;
pub mod syscall;
