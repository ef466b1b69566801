//! The kernel console on COM1: `[kernel] `-prefixed lines, the bare `RAMPART-RESULT:` lines the
//! boot tests parse, and a lock-free path for fatal reports.

use crate::arch::uart::Com1;
use core::fmt::{self, Write};
use spin::Mutex;

/// Prefix of every kernel log line on the shared serial console.
pub const PREFIX: &str = "[kernel] ";

/// The initialised UART; `None` until [`init`].
static CONSOLE: Mutex<Option<Com1>> = Mutex::new(None);

/// Programs COM1 (115200 8N1, FIFOs on, no interrupts). Call first thing at boot.
pub fn init() {
    *CONSOLE.lock() = Some(Com1::init());
}

/// Writes `[kernel] <args>` and a line end.
pub fn print_line(args: fmt::Arguments<'_>) {
    if let Some(port) = CONSOLE.lock().as_mut() {
        write_line(port, PREFIX, args);
    }
}

/// Writes `RAMPART-RESULT: <args>` (no prefix: the boot tests match it at line start).
pub fn print_result(args: fmt::Arguments<'_>) {
    if let Some(port) = CONSOLE.lock().as_mut() {
        write_line(port, "RAMPART-RESULT: ", args);
    }
}

/// For exception and panic reports, which may have interrupted a holder of the console lock:
/// writes through a fresh handle to the (already initialised) UART instead.
pub fn emergency_line(prefixed: bool, args: fmt::Arguments<'_>) {
    let prefix = if prefixed { PREFIX } else { "" };
    write_line(&mut Com1::attach(), prefix, args);
}

fn write_line(port: &mut Com1, prefix: &str, args: fmt::Arguments<'_>) {
    // The UART never fails a write (it drops bytes on timeout instead), so `fmt::Error` can
    // only come from a `Display` impl; the rest of the line is still worth having.
    let _ = port.write_str(prefix);
    let _ = port.write_fmt(args);
    let _ = port.write_str("\r\n");
}

/// `kprintln!("fmt", args..)`: one `[kernel] `-prefixed console line.
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
pub(crate) use kprintln;
