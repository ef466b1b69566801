//! The legacy 8259 PIC pair: remapped away from the exception vectors and fully masked. The
//! kernel uses the LAPIC; the firmware may have left the PICs enabled, and even a masked 8259
//! can raise a spurious IRQ7/IRQ15, which must not land on an exception vector.

use super::port::outb;
use crate::trap::VECTOR_LEGACY_PIC_BASE;

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
/// ICW1: initialisation, ICW4 follows (cascade mode, edge triggered).
const ICW1_INIT_WITH_ICW4: u8 = 0x11;
/// ICW3 for the master: a slave on IR2.
const ICW3_MASTER_SLAVE_ON_IR2: u8 = 1 << 2;
/// ICW3 for the slave: its cascade identity 2.
const ICW3_SLAVE_ID: u8 = 2;
/// ICW4: 8086 mode.
const ICW4_8086: u8 = 0x01;
/// OCW1: mask all eight lines.
const MASK_ALL: u8 = 0xff;

/// Remaps the PICs to `VECTOR_LEGACY_PIC_BASE..+16` and masks every line.
pub fn disable() {
    // SAFETY: the PICs belong to the kernel (the guest owns its devices; the firmware has
    // exited boot services). This is the standard ICW1-4 sequence followed by OCW1, and leaves
    // both chips masked, so no interrupt from them can be delivered.
    unsafe {
        outb(MASTER_COMMAND, ICW1_INIT_WITH_ICW4);
        outb(SLAVE_COMMAND, ICW1_INIT_WITH_ICW4);
        outb(MASTER_DATA, VECTOR_LEGACY_PIC_BASE);
        outb(SLAVE_DATA, VECTOR_LEGACY_PIC_BASE + 8);
        outb(MASTER_DATA, ICW3_MASTER_SLAVE_ON_IR2);
        outb(SLAVE_DATA, ICW3_SLAVE_ID);
        outb(MASTER_DATA, ICW4_8086);
        outb(SLAVE_DATA, ICW4_8086);
        outb(MASTER_DATA, MASK_ALL);
        outb(SLAVE_DATA, MASK_ALL);
    }
}
