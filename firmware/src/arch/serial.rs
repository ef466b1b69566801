//! COM1 as a polled 16550 UART at 115200 8N1, written with direct port I/O.

use core::fmt;

use x86::io::{inb, outb};

/// I/O base of COM1.
pub const COM1: u16 = 0x3f8;

// 16550 registers, offsets from the base (DLAB = 0 unless noted).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const DIVISOR_LOW: u16 = 0; // DLAB = 1
const DIVISOR_HIGH: u16 = 1; // DLAB = 1
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

const LINE_CONTROL_DLAB: u8 = 0x80;
const LINE_CONTROL_8N1: u8 = 0x03;
/// Enable and clear both FIFOs, 14-byte trigger.
const FIFO_ENABLE_CLEAR: u8 = 0xC7;
/// DTR and RTS; OUT2 left clear so the UART raises no interrupt.
const MODEM_DTR_RTS: u8 = 0x03;
const LINE_STATUS_THR_EMPTY: u8 = 0x20;
/// 115200 baud = 115200 / divisor 1.
const DIVISOR_115200: u16 = 1;
/// Polls before giving up on a stuck transmitter (so a missing UART cannot hang the boot).
const MAX_POLLS: u32 = 100_000;

/// Programs COM1 for 115200 8N1, interrupts off.
pub fn init() {
    let [low, high] = DIVISOR_115200.to_le_bytes();
    // SAFETY: COM1's registers are I/O ports owned by the firmware during boot; writing them
    // only reconfigures the UART, no memory is touched.
    unsafe {
        outb(COM1 + INTERRUPT_ENABLE, 0);
        outb(COM1 + LINE_CONTROL, LINE_CONTROL_DLAB);
        outb(COM1 + DIVISOR_LOW, low);
        outb(COM1 + DIVISOR_HIGH, high);
        outb(COM1 + LINE_CONTROL, LINE_CONTROL_8N1);
        outb(COM1 + FIFO_CONTROL, FIFO_ENABLE_CLEAR);
        outb(COM1 + MODEM_CONTROL, MODEM_DTR_RTS);
    }
}

fn send(byte: u8) {
    for _ in 0..MAX_POLLS {
        // SAFETY: reading the line status register of COM1 has no side effect on memory.
        if unsafe { inb(COM1 + LINE_STATUS) } & LINE_STATUS_THR_EMPTY != 0 {
            break;
        }
    }
    // SAFETY: writing the transmit register of COM1 only sends a byte.
    unsafe { outb(COM1 + DATA, byte) };
}

/// `fmt::Write` sink for COM1; `\n` goes out as `\r\n`.
pub struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                send(b'\r');
            }
            send(byte);
        }
        Ok(())
    }
}
