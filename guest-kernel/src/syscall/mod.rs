//! System calls: the frame the SYSCALL stub builds, the dispatcher, and the table of handlers,
//! a `static` array of function pointers in read-only data (the hypervisor can make it EPT
//! read-only). Numbers and semantics: `rampart_kernel_abi::syscall`.

mod bench;
mod console;
pub mod memory;
mod process;
mod suite;
mod user;

use rampart_kernel_abi::syscall::{Errno, Syscall};

/// Saved user registers, lowest address first, as `arch::syscall_entry` pushes them.
#[repr(C)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    /// The number on entry, the result on return.
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub r10: u64,
    pub r8: u64,
    pub r9: u64,
    /// User RIP (SYSCALL saved it in RCX).
    pub rcx: u64,
    /// User RFLAGS (SYSCALL saved it in R11).
    pub r11: u64,
    pub user_rsp: u64,
}

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
];

/// Where the table is: the attack suite tries to overwrite it.
#[cfg(feature = "attacks")]
pub fn table_address() -> u64 {
    TABLE.as_ptr() as u64
}

/// Called by the SYSCALL stub with interrupts off.
pub extern "sysv64" fn dispatch(frame: *mut SyscallFrame) {
    // SAFETY: the stub passes the frame it has just pushed on this kernel stack; it stays valid
    // and unaliased until this returns.
    #[allow(unsafe_code)]
    let frame = unsafe { &mut *frame };
    let arguments = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let result = match Syscall::from_raw(frame.rax) {
        Some(number) => TABLE[number as usize](&arguments),
        None => Err(Errno::NoSys),
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.to_raw(),
    };
}
