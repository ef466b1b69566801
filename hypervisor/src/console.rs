//! The hypervisor's log on the shared console UART: every line prefixed `[hv] `.
//!
//! The guest owns COM1 too (DESIGN.md "Devices and interrupts"); the hypervisor writes a line
//! only while no vCPU runs guest code (`smp::quiet`), so lines never interleave.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static CONSOLE: Mutex<Option<SerialPort>> = Mutex::new(None);
static LEVEL: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(3);

/// Log levels as in the boot config: 1 = error .. 5 = trace.
pub const ERROR: u8 = 1;
pub const WARN: u8 = 2;
pub const INFO: u8 = 3;
pub const DEBUG: u8 = 4;

/// Takes the UART at `port`, keeping the line settings the firmware programmed.
///
/// # Safety
/// `port` must be the base of a 16550 UART that only the firmware, the hypervisor and the guest
/// (which writes only while the hypervisor is not running) use.
#[allow(unsafe_code)]
pub unsafe fn init(port: u16, level: u8) {
    // SAFETY: the caller guarantees `port` is a 16550 UART we may drive.
    let serial = unsafe { SerialPort::new(port) };
    *CONSOLE.lock() = Some(serial);
    LEVEL.store(level, core::sync::atomic::Ordering::Relaxed);
}

/// True if lines at `level` are printed.
pub fn enabled(level: u8) -> bool {
    level <= LEVEL.load(core::sync::atomic::Ordering::Relaxed)
}

/// TSC cycles spent writing log lines (the UART is slow: 115200 baud), so that boot-cost
/// figures can leave logging out.
static CYCLES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Cycles spent in [`line`] so far.
pub fn cycles() -> u64 {
    CYCLES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Writes one line: `prefix` then the formatted text then CR LF.
pub fn line(prefix: &str, args: fmt::Arguments<'_>) {
    let started = crate::arch::instructions::rdtsc();
    let mut guard = CONSOLE.lock();
    if let Some(serial) = guard.as_mut() {
        crate::smp::quiet::with_others_out_of_the_guest(|| {
            let _ = serial.write_str(prefix);
            let _ = serial.write_fmt(args);
            let _ = serial.write_str("\r\n");
        });
    }
    drop(guard);
    let spent = crate::arch::instructions::rdtsc().wrapping_sub(started);
    CYCLES.fetch_add(spent, core::sync::atomic::Ordering::Relaxed);
}

/// `hvlog!(level, "...", args)`: a `[hv] ` line if `level` is enabled.
#[macro_export]
macro_rules! hvlog {
    ($level:expr, $($arg:tt)*) => {
        if $crate::console::enabled($level) {
            $crate::console::line("[hv] ", format_args!($($arg)*));
        }
    };
}

/// The machine-readable result line the runner stops on: `RAMPART-RESULT: ...`.
pub fn result_line(args: fmt::Arguments<'_>) {
    line("RAMPART-RESULT: ", args);
}
