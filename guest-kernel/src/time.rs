//! Kernel time: the tick counter the timer interrupt advances.

use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts taken since the timer was started.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Called by the timer interrupt handler, once per tick.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
