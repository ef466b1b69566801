//! The debugger's line: COM2, a 16550 UART the guest cannot reach (its ports exit through the
//! I/O bitmap and are denied, see `exits::io`). Polled, no interrupts: the stub only talks
//! while the guest is stopped in a VM exit.
#![allow(unsafe_code)]

use crate::devices::ports::COM2_BASE;
use x86::io::{inb, outb};

/// 16550 registers (offsets from the base) and bits.
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;
const LINE_STATUS_DATA_READY: u8 = 1 << 0;
const LINE_STATUS_TRANSMIT_EMPTY: u8 = 1 << 5;
const LINE_CONTROL_DLAB: u8 = 1 << 7;
const LINE_CONTROL_8N1: u8 = 0b11;
/// Enable and clear both FIFOs, 14-byte trigger.
const FIFO_ENABLE_CLEAR: u8 = 0xc7;
/// DTR and RTS; OUT2 stays 0 so the UART never raises IRQ3 into the guest.
const MODEM_DTR_RTS: u8 = 0b11;
/// Divisor 1: 115200 baud.
const DIVISOR: u8 = 1;

/// COM2 as a `gdbstub` connection.
pub struct Com2(());

impl Com2 {
    /// Programs COM2: 115200 8N1, FIFOs on, interrupts off.
    ///
    /// # Safety
    /// Only the hypervisor may drive COM2 (the I/O bitmap denies it to the guest), and only one
    /// `Com2` may exist.
    pub unsafe fn init() -> Self {
        let port = |offset| COM2_BASE + offset;
        // SAFETY: COM2 is the hypervisor's (caller contract); these writes only program the
        // UART's line settings.
        unsafe {
            outb(port(INTERRUPT_ENABLE), 0);
            outb(port(LINE_CONTROL), LINE_CONTROL_DLAB);
            outb(port(DATA), DIVISOR);
            outb(port(INTERRUPT_ENABLE), 0);
            outb(port(LINE_CONTROL), LINE_CONTROL_8N1);
            outb(port(FIFO_CONTROL), FIFO_ENABLE_CLEAR);
            outb(port(MODEM_CONTROL), MODEM_DTR_RTS);
        }
        Self(())
    }

    /// COM2 as [`Com2::init`] left it.
    ///
    /// # Safety
    /// [`Com2::init`] must have run; all users must be serialised (the session lock).
    pub unsafe fn attach() -> Self {
        Self(())
    }

    fn line_status(&self) -> u8 {
        // SAFETY: reading the line status register of our UART has no side effects.
        unsafe { inb(COM2_BASE + LINE_STATUS) }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.line_status() & LINE_STATUS_DATA_READY == 0 {
            return None;
        }
        // SAFETY: data is ready; reading the data register pops it from our UART's FIFO.
        Some(unsafe { inb(COM2_BASE + DATA) })
    }

    /// Waits for the next byte (the guest is stopped meanwhile).
    pub fn read_blocking(&mut self) -> u8 {
        loop {
            if let Some(byte) = self.try_read() {
                return byte;
            }
            core::hint::spin_loop();
        }
    }
}

impl gdbstub::conn::Connection for Com2 {
    type Error = core::convert::Infallible;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        while self.line_status() & LINE_STATUS_TRANSMIT_EMPTY == 0 {
            core::hint::spin_loop();
        }
        // SAFETY: the transmit holding register is empty; writing it sends one byte.
        unsafe { outb(COM2_BASE + DATA, byte) };
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
