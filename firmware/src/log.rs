//! Firmware log: `[fw] ` lines on COM1 (port I/O), filtered by the boot config's log level.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use rampart_loader::config::LogLevel;

use crate::arch::serial::Com1;

/// Current level as `LogLevel as u8`; info until the boot config is read.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one `[fw] ` line if `level` is enabled.
pub fn line(level: LogLevel, args: fmt::Arguments<'_>) {
    if enabled(level) {
        let _ = writeln!(Com1, "[fw] {args}");
    }
}

/// Writes one unprefixed line (the machine-readable result line).
pub fn raw_line(args: fmt::Arguments<'_>) {
    let _ = writeln!(Com1, "{args}");
}

macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line(rampart_loader::config::LogLevel::Info, format_args!($($arg)*)) };
}
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::line(rampart_loader::config::LogLevel::Debug, format_args!($($arg)*)) };
}
pub(crate) use {debug, info};
