//! The 8254 PIT, channel 2, as a one-shot 10 ms reference for calibrating other timers. Channel
//! 2 is gated by port 0x61 and its output is readable there, so no interrupt is needed.

use super::cpu;
use super::port::{inb, outb};

/// Input clock of the PIT in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// The reference interval in milliseconds.
pub const INTERVAL_MS: u64 = 10;

const CHANNEL_2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
/// NMI status and control: bit 0 gates channel 2, bit 1 feeds it to the speaker, bit 5 reads
/// its output. Only bits 0-3 are writable.
const SYSTEM_CONTROL: u16 = 0x61;
const GATE_2: u8 = 1 << 0;
const SPEAKER: u8 = 1 << 1;
const OUT_2: u8 = 1 << 5;
const WRITABLE_BITS: u8 = 0x0f;
/// Command: channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
const CHANNEL_2_MODE_0: u8 = 0b1011_0000;
/// TSC cycles to wait for the PIT before giving up (well over 10 ms on any real clock).
const TIMEOUT_CYCLES: u64 = 5_000_000_000;

/// Arms channel 2 for 10 ms, calls `start` right after, waits for the terminal count and
/// returns what `stop` returns then. `None` if the PIT never counted down (no PIT, or an
/// emulator without one): the caller falls back to an uncalibrated value.
pub fn measure_interval<T>(start: impl FnOnce(), stop: impl FnOnce() -> T) -> Option<T> {
    let count = PIT_HZ * INTERVAL_MS / 1000;
    let [low, high] = (count as u16).to_le_bytes();
    // SAFETY: channel 2 and port 0x61 belong to the kernel (nothing else uses the speaker
    // timer). Gate on, speaker off, then the mode-0 programming sequence from the 8254 data sheet;
    // in mode 0 OUT2 is low from the command write until the count expires.
    unsafe {
        let control = inb(SYSTEM_CONTROL) & WRITABLE_BITS;
        outb(SYSTEM_CONTROL, (control & !SPEAKER) | GATE_2);
        outb(COMMAND, CHANNEL_2_MODE_0);
        outb(CHANNEL_2_DATA, low);
        outb(CHANNEL_2_DATA, high);
    }
    start();
    let began = cpu::rdtsc();
    // SAFETY: reading port 0x61 has no side effect.
    while unsafe { inb(SYSTEM_CONTROL) } & OUT_2 == 0 {
        if cpu::rdtsc().wrapping_sub(began) > TIMEOUT_CYCLES {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(stop())
}
