//! Kernel time: the tick counter the timer interrupt advances.

use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts taken since the timer was started.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Timer frequency in Hz (set at boot from the command line).
static HZ: AtomicU64 = AtomicU64::new(crate::cmdline::DEFAULT_HZ);

/// Records the timer frequency.
pub fn set_hz(hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
}

/// The timer frequency.
pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// Milliseconds since the timer started.
pub fn uptime_ms() -> u64 {
    ticks().saturating_mul(1000) / hz()
}

/// Called by the timer interrupt handler, once per tick.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
