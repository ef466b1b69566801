//! Process entry and panics (x86_64-unknown-none only).
//!
//! The kernel starts a program at `_start` with RDI = user address of the argument string,
//! RSI = its length and RSP = the 16-byte aligned top of its stack. `_start` calls
//! [`start`] so that the SysV alignment rule (RSP + 8 aligned at function entry) holds.
#![allow(unsafe_code)]

use crate::sys;

/// Exit code of a program that panicked.
const EXIT_PANIC: i64 = 101;

core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    xor ebp, ebp",
    "    call {start}",
    "    ud2",
    start = sym start,
);

extern "Rust" {
    /// Defined by [`crate::entry!`] in each program.
    fn rampart_user_main(args: &str) -> i64;
}

/// Builds the argument string and runs the program's main, then exits with its code.
extern "C" fn start(args: *const u8, len: usize) -> ! {
    let bytes: &[u8] = if args.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the kernel's entry contract: RDI/RSI describe the argument string it copied
        // into this process's memory, which stays mapped and is never written again.
        unsafe { core::slice::from_raw_parts(args, len) }
    };
    let text = core::str::from_utf8(bytes).unwrap_or("");
    // SAFETY: `entry!` defines `rampart_user_main` with exactly this signature in every
    // program linked with this runtime.
    let code = unsafe { rampart_user_main(text) };
    sys::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::eprintln!("panic in pid {}: {}", sys::getpid(), info);
    sys::exit(EXIT_PANIC)
}
