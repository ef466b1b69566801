//! The kernel console on COM1: `[kernel] `-prefixed lines, the bare `RAMPART-RESULT:` lines the
//! boot tests parse, and a lock-free path for fatal reports.

use crate::arch::cpu::without_interrupts;
use crate::arch::log::{self, write_line, PREFIX};
use crate::arch::uart::Com1;
use crate::line::LineDiscipline;
use core::fmt;
use spin::Mutex;

/// The initialised UART; `None` until [`init`].
static CONSOLE: Mutex<Option<Com1>> = Mutex::new(None);

/// Console input in cooked mode, fed by [`poll_input`] on every timer tick.
static INPUT: Mutex<LineDiscipline> = Mutex::new(LineDiscipline::new());

/// Programs COM1 (115200 8N1, FIFOs on, no interrupts) and makes the console the sink of
/// `arch`'s own lines. Call first thing at boot.
pub fn init() {
    *CONSOLE.lock() = Some(Com1::init());
    log::set_sink(print_line);
}

/// Writes `[kernel] <args>` and a line end.
pub fn print_line(args: fmt::Arguments<'_>) {
    with_port(|port| write_line(port, PREFIX, args));
}

/// Writes `RAMPART-RESULT: <args>` (no prefix: the boot tests match it at line start).
pub fn print_result(args: fmt::Arguments<'_>) {
    with_port(|port| write_line(port, "RAMPART-RESULT: ", args));
}

/// Writes `bytes` as they are (user output: no prefix, no line end added).
pub fn write_raw(bytes: &[u8]) {
    with_port(|port| port.write_bytes(bytes));
}

/// The console lock is only ever held with interrupts off, so the timer's input polling never
/// waits for a holder it interrupted.
fn with_port(body: impl FnOnce(&mut Com1)) {
    without_interrupts(|| {
        if let Some(port) = CONSOLE.lock().as_mut() {
            body(port);
        }
    });
}

/// Takes every received byte into the line discipline and echoes it. Returns whether a
/// complete line is waiting. Called from the timer interrupt.
pub fn poll_input() -> bool {
    without_interrupts(|| {
        let mut input = INPUT.lock();
        if let Some(port) = CONSOLE.lock().as_mut() {
            while let Some(byte) = port.read_byte() {
                port.write_bytes(input.receive(byte));
            }
        }
        input.has_line()
    })
}

/// Copies the first complete line (or as much as fits) into `buffer`; 0 if none is waiting.
pub fn read_line(buffer: &mut [u8]) -> usize {
    without_interrupts(|| INPUT.lock().read(buffer))
}

/// The lock-free path for fatal reports (`arch::log`, which owns it: `arch` reports its own
/// fatal exceptions).
pub use crate::arch::log::emergency_line;

/// `kprintln!("fmt", args..)`: one `[kernel] `-prefixed console line.
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
pub(crate) use kprintln;
