//! The COM1 16550 UART, polled (no interrupts): the kernel console.

use super::port::{inb, outb};
use core::fmt;

/// I/O base of COM1 on every PC.
const COM1_BASE: u16 = 0x3f8;

// Register offsets from the base (16550 data sheet; DLAB = LCR bit 7 selects the divisor).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const DIVISOR_LOW: u16 = 0;
const DIVISOR_HIGH: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

/// LCR: divisor latch access.
const LCR_DLAB: u8 = 1 << 7;
/// LCR: 8 data bits, no parity, 1 stop bit.
const LCR_8N1: u8 = 0b11;
/// FCR: enable and clear both FIFOs, receive trigger at 14 bytes.
const FCR_ENABLE_CLEAR_14: u8 = 0xc7;
/// MCR: DTR and RTS asserted, OUT2 clear (the UART's IRQ line stays disconnected).
const MCR_DTR_RTS: u8 = 0b11;
/// LSR: transmit holding register empty.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// LSR: a received byte is waiting.
const LSR_DATA_READY: u8 = 1 << 0;
/// 115200 baud from the 1.8432 MHz / 16 = 115200 Hz base clock.
const DIVISOR_115200: u16 = 1;
/// Polls of LSR before a byte is dropped: a missing or stuck UART must not hang the kernel.
const TRANSMIT_SPINS: u32 = 100_000;

/// A handle to COM1. The port is fixed, so the handle only ever talks to the PC's standard
/// console UART, which this kernel owns (the hypervisor only writes whole prefixed lines).
pub struct Com1(());

impl Com1 {
    /// Programs the UART for 115200 8N1 with FIFOs and interrupts off, and returns a handle.
    pub fn init() -> Self {
        // SAFETY: COM1 is the kernel's console UART (see `Com1`); this is the 16550's
        // documented programming sequence, and interrupts stay disabled at the UART.
        unsafe {
            outb(COM1_BASE + INTERRUPT_ENABLE, 0);
            outb(COM1_BASE + LINE_CONTROL, LCR_DLAB);
            let [low, high] = DIVISOR_115200.to_le_bytes();
            outb(COM1_BASE + DIVISOR_LOW, low);
            outb(COM1_BASE + DIVISOR_HIGH, high);
            outb(COM1_BASE + LINE_CONTROL, LCR_8N1);
            outb(COM1_BASE + FIFO_CONTROL, FCR_ENABLE_CLEAR_14);
            outb(COM1_BASE + MODEM_CONTROL, MCR_DTR_RTS);
        }
        Self(())
    }

    /// A handle to the UART as it is, without reprogramming it (for fatal-error paths).
    pub fn attach() -> Self {
        Self(())
    }

    /// A received byte, if one is waiting (polled; the UART's interrupts stay off).
    pub fn read_byte(&mut self) -> Option<u8> {
        // SAFETY: reading COM1's line status has no side effect; reading DATA when LSR says a
        // byte is ready takes that byte, which only this console consumes.
        unsafe {
            (inb(COM1_BASE + LINE_STATUS) & LSR_DATA_READY != 0).then(|| inb(COM1_BASE + DATA))
        }
    }

    /// Writes raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&byte| self.write_byte(byte));
    }

    fn write_byte(&mut self, byte: u8) {
        for _ in 0..TRANSMIT_SPINS {
            // SAFETY: reading COM1's line status register has no side effect.
            if unsafe { inb(COM1_BASE + LINE_STATUS) } & LSR_THR_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: a data write to COM1 transmits one byte; nothing else depends on the port.
        unsafe { outb(COM1_BASE + DATA, byte) };
    }
}

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|byte| self.write_byte(byte));
        Ok(())
    }
}
