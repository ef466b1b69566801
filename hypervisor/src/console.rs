//! The hypervisor's log on the shared console UART: every line prefixed `[hv] `, written by
//! the `log` facade's logger (`log::info!` and friends; the level comes from boot.cfg).
//!
//! The guest owns COM1 too (hypervisor/DESIGN.md "Devices and interrupts"); the hypervisor writes a
//! line only while no vCPU runs guest code (`smp::quiet`), so lines never interleave.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static CONSOLE: Mutex<Option<SerialPort>> = Mutex::new(None);

/// The `log` facade's backend: one `[hv] ` line per record.
struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            line("[hv] ", *record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

/// The boot config's log level (1 = error .. 5 = trace) as a `log` filter.
fn level_filter(level: u8) -> log::LevelFilter {
    // `LevelFilter::iter` yields Off, Error, Warn, Info, Debug, Trace.
    log::LevelFilter::iter()
        .nth(level.into())
        .unwrap_or(log::LevelFilter::Trace)
}

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
    // A second logger cannot be installed; the first (this one) stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level_filter(level));
}

/// TSC cycles spent writing log lines (the UART is slow: 115200 baud), so that boot-cost
/// figures can leave logging out.
static CYCLES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Cycles spent in [`line()`] so far.
pub fn cycles() -> u64 {
    CYCLES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Writes one line: `prefix` then the formatted text then CR LF.
pub fn line(prefix: &str, args: fmt::Arguments<'_>) {
    let started = crate::arch::instructions::rdtsc();
    // The console lock is held to the end of the `if let` (its scrutinee's temporary).
    if let Some(serial) = CONSOLE.lock().as_mut() {
        crate::cpus::quiet::with_others_out_of_the_guest(|| {
            let _ = serial.write_str(prefix);
            let _ = serial.write_fmt(args);
            let _ = serial.write_str("\r\n");
        });
    }
    let spent = crate::arch::instructions::rdtsc().wrapping_sub(started);
    CYCLES.fetch_add(spent, core::sync::atomic::Ordering::Relaxed);
}

/// The machine-readable result line the runner stops on: `RAMPART-RESULT: ...`.
pub fn result_line(args: fmt::Arguments<'_>) {
    line("RAMPART-RESULT: ", args);
}

#[cfg(test)]
mod tests {
    #[test]
    fn boot_config_levels_map_to_filters() {
        use log::LevelFilter::*;
        let filters = [0, 1, 2, 3, 4, 5, 9].map(super::level_filter);
        assert_eq!(filters, [Off, Error, Warn, Info, Debug, Trace, Trace]);
    }
}
