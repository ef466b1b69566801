//! The console lines `arch` itself writes: ordinary lines through a sink the console module
//! sets once at boot (so `arch` needs nothing above it), and the lock-free emergency path for
//! fatal reports, which writes COM1 directly.

use super::uart::Com1;
use core::fmt::{self, Write};

/// Prefix of every kernel log line on the shared serial console.
pub const PREFIX: &str = "[kernel] ";

/// Writes one `[kernel] `-prefixed line (the console's `print_line`).
pub type Sink = fn(fmt::Arguments<'_>);

/// Set once by the console when it owns the UART; lines before that are dropped, as the
/// console drops them before its `init`.
static SINK: spin::Once<Sink> = spin::Once::new();

/// Makes `sink` the destination of [`line`]. Only the first call counts.
pub fn set_sink(sink: Sink) {
    SINK.call_once(|| sink);
}

/// One `[kernel] `-prefixed console line, through the sink.
pub fn line(args: fmt::Arguments<'_>) {
    if let Some(sink) = SINK.get() {
        sink(args);
    }
}

/// For exception and panic reports, which may have interrupted a holder of the console lock:
/// writes through a fresh handle to the (already initialised) UART instead.
pub fn emergency_line(prefixed: bool, args: fmt::Arguments<'_>) {
    let prefix = if prefixed { PREFIX } else { "" };
    write_line(&mut Com1::attach(), prefix, args);
}

/// Writes `prefix`, `args` and a line end to `port`.
pub fn write_line(port: &mut Com1, prefix: &str, args: fmt::Arguments<'_>) {
    // The UART never fails a write (it drops bytes on timeout instead), so `fmt::Error` can
    // only come from a `Display` impl; the rest of the line is still worth having.
    let _ = port.write_str(prefix);
    let _ = port.write_fmt(args);
    let _ = port.write_str("\r\n");
}
