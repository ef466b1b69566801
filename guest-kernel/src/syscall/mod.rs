//! System calls: the dispatcher of the frame the SYSCALL stub builds, and the table of handlers,
//! a `static` array of function pointers in read-only data (the hypervisor can make it EPT
//! read-only). Numbers and semantics: `rampart_kernel_abi::syscall`.

mod bench;
mod console;
pub mod memory;
mod process;
mod suite;
mod user;

use crate::arch::syscall_entry::SyscallFrame;
use rampart_kernel_abi::syscall::{Errno, Syscall};

/// The six argument registers.
pub type Arguments = [u64; 6];
/// A handler: the result (non-negative) or an error.
pub type Handler = fn(&Arguments) -> Result<u64, Errno>;

/// Indexed by `Syscall` number; `static`, so it lands in .rodata (linker.ld).
static TABLE: [Handler; Syscall::COUNT] = [
    console::write,
    console::read,
    process::exit,
    process::yield_now,
    process::sleep,
    process::getpid,
    process::spawn,
    process::wait,
    memory::brk,
    console::uptime,
    process::kill,
    process::processes,
    console::exit_count,
    console::exit_cycles,
    suite::attacks,
    bench::bench,
    suite::fuzz,
    process::programs,
];

/// Where the table is: the attack suite tries to overwrite it.
#[cfg(feature = "attacks")]
pub fn table_address() -> u64 {
    TABLE.as_ptr() as u64
}

/// Called by the SYSCALL stub (through `arch::kernel::Kernel::syscall`) with interrupts off.
#[inline]
pub fn dispatch(frame: &mut SyscallFrame) {
    let arguments = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let result = match Syscall::try_from(frame.rax).ok() {
        Some(number) => TABLE[number as usize](&arguments),
        None => Err(Errno::NoSys),
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.to_raw(),
    };
}
