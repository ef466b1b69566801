//! PCI configuration mechanism #1 as a compromised kernel uses it: find a function by class or
//! by its BARs, read and write its registers. Under Rampart every data-port access exits and
//! goes through the hypervisor's filter (bus mastering stripped, BARs kept in the MMIO window).
#![allow(unsafe_code)] // port I/O on the PCI configuration ports

use crate::arch::port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// Address-port bit 31: configuration space enabled.
const ENABLE: u32 = 1 << 31;

/// Type-0 header registers (PCI Local Bus 3.0, 6.1).
pub const VENDOR_ID: u8 = 0x00;
pub const COMMAND: u8 = 0x04;
pub const CLASS_REVISION: u8 = 0x08;
pub const HEADER_TYPE: u8 = 0x0c;
pub const FIRST_BAR: u8 = 0x10;
pub const BAR_COUNT: u8 = 6;
/// Command register bits: I/O space, bus master.
pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// BAR bit 0: I/O space; bits 2:1 = 10: a 64-bit memory BAR.
pub const BAR_IO: u32 = 1;
pub const BAR_TYPE_64: u32 = 0b100;
const BAR_MEMORY_FLAGS: u32 = 0xf;
const BAR_IO_FLAGS: u32 = 0x3;

/// One function on bus 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub device: u8,
    pub function: u8,
}

impl Function {
    fn select(self, register: u8) {
        let address = ENABLE
            | (u32::from(self.device) << 11)
            | (u32::from(self.function) << 8)
            | u32::from(register & 0xfc);
        // SAFETY: the configuration address port only selects what the data port reaches.
        unsafe { port::outl(CONFIG_ADDRESS, address) };
    }

    pub fn read32(self, register: u8) -> u32 {
        self.select(register);
        // SAFETY: reading configuration space has no side effects on memory.
        unsafe { port::inl(CONFIG_DATA) }
    }

    pub fn read16(self, register: u8) -> u16 {
        self.select(register);
        // SAFETY: as in `read32`.
        unsafe { port::inw(CONFIG_DATA + u16::from(register & 2)) }
    }

    /// Writes a dword register.
    ///
    /// # Safety
    /// The write changes how the device decodes or what it may do (DMA, BARs): the caller
    /// restores it or means it (an attack).
    pub unsafe fn write32(self, register: u8, value: u32) {
        self.select(register);
        // SAFETY: delegated to the caller.
        unsafe { port::outl(CONFIG_DATA, value) };
    }

    /// Writes a word register.
    ///
    /// # Safety
    /// As [`Function::write32`].
    pub unsafe fn write16(self, register: u8, value: u16) {
        self.select(register);
        // SAFETY: delegated to the caller.
        unsafe { port::outw(CONFIG_DATA + u16::from(register & 2), value) };
    }

    /// Class code and subclass (bits 31:16 of register 0x08).
    pub fn class(self) -> u16 {
        (self.read32(CLASS_REVISION) >> 16) as u16
    }

    pub fn is_endpoint(self) -> bool {
        (self.read32(HEADER_TYPE) >> 16) & 0x7f == 0
    }

    /// The base address of BAR `index` (flags cleared) and whether it is I/O.
    pub fn bar(self, index: u8) -> (u32, bool) {
        let raw = self.read32(FIRST_BAR + 4 * index);
        if raw & BAR_IO != 0 {
            (raw & !BAR_IO_FLAGS, true)
        } else {
            (raw & !BAR_MEMORY_FLAGS, false)
        }
    }

    /// The size of 32-bit memory BAR `index` (PCI 3.0 6.2.5.1: all ones, read back, restore;
    /// the hypervisor forwards sizing), 0 if unimplemented, I/O or 64-bit.
    pub fn memory_bar_size(self, index: u8) -> u32 {
        let register = FIRST_BAR + 4 * index;
        let current = self.read32(register);
        if current & BAR_IO != 0 || current & BAR_TYPE_64 != 0 {
            return 0;
        }
        // SAFETY: the standard sizing sequence; the BAR gets its value back at once.
        let readback = unsafe {
            self.write32(register, u32::MAX);
            let readback = self.read32(register);
            self.write32(register, current);
            readback
        };
        let mask = readback & !BAR_MEMORY_FLAGS;
        if mask == 0 {
            0
        } else {
            (!mask).wrapping_add(1)
        }
    }
}

/// Every present function on bus 0.
pub fn functions() -> impl Iterator<Item = Function> {
    (0..32u8)
        .flat_map(|device| (0..8u8).map(move |function| Function { device, function }))
        .filter(|f| f.read16(VENDOR_ID) != 0xffff)
}

/// The first function of class/subclass `class`.
pub fn find_class(class: u16) -> Option<Function> {
    functions().find(|f| f.class() == class)
}

/// The first function with vendor:device `id` (vendor in the low half).
pub fn find_id(id: u32) -> Option<Function> {
    functions().find(|f| f.read32(VENDOR_ID) == id)
}

/// `pci-unaligned`: `out 0xCFD, eax` (value 5) with the Command register selected, bus
/// mastering off first. Natively the dword runs from 0xCFD to 0xD00: bytes 5-7 of the
/// register (Command's high byte, Status) and an unrelated port, so Bus Master Enable stays
/// off; a hypervisor that reshapes it into a Command/Status write turns it on.
pub fn unaligned_command_write() -> super::verdict::Attempt {
    use super::verdict::Attempt;
    // A function whose bus mastering turns off (a host bridge's may be hard-wired on: there
    // the write changed nothing, and nothing is written back).
    // SAFETY: bus mastering off on a device this kernel never started (nothing in flight).
    let found = functions()
        .filter(|f| f.is_endpoint())
        .find_map(|f| unsafe {
            let command = f.read16(COMMAND);
            f.write16(COMMAND, command & !COMMAND_BUS_MASTER);
            (f.read16(COMMAND) & COMMAND_BUS_MASTER == 0).then_some((f, command))
        });
    let Some((function, command)) = found else {
        return Attempt::NotApplicable("no function whose bus mastering turns off");
    };
    // SAFETY: the unaligned write, then the Command register as it was (Status is left
    // alone: its bits clear on a 1).
    let after = unsafe {
        function.select(COMMAND);
        port::outl(CONFIG_DATA + 1, 0x5);
        let after = function.read16(COMMAND);
        function.write16(COMMAND, command);
        after
    };
    if after & COMMAND_BUS_MASTER != 0 {
        Attempt::Done
    } else if crate::arch::hypercall::rampart().is_some() {
        Attempt::NoEffect
    } else {
        Attempt::NotApplicable("the platform leaves bus mastering off")
    }
}

/// PIIX4's power-management function and ICH9's LPC bridge: PM I/O base at 0x40 (bits 15:6
/// and 15:7), PM1 control at base + 4.
const PIIX4_ACPI: u32 = 0x7113_8086;
const ICH9_LPC: u32 = 0x2918_8086;
const PM_BASE: u8 = 0x40;
const PM1_CONTROL_OFFSET: u16 = 4;
/// PM1 control (ACPI 6.5 4.8.3.2.1): SLP_TYPx bits 12:10, SLP_EN bit 13. Type 5 is S3
/// (suspend to RAM) on Intel chipsets (ICH9 datasheet 13.8.3.2); QEMU's models treat it as
/// no state, so natively the request reaches the chipset and nothing sleeps.
const SLEEP_TYPE_SHIFT: u16 = 10;
const SLEEP_TYPE_MASK: u16 = 0b111 << SLEEP_TYPE_SHIFT;
const SLEEP_ENABLE: u16 = 1 << 13;
const INTEL_S3: u16 = 5;

/// The chipset's PM1 control port, if the platform has one of the two chipsets.
fn pm1_control() -> Option<u16> {
    functions().find_map(|f| {
        let mask = match f.read32(VENDOR_ID) {
            PIIX4_ACPI => 0xffc0,
            ICH9_LPC => 0xff80,
            _ => return None,
        };
        let base = (f.read32(PM_BASE) & mask) as u16;
        (base != 0).then_some(base + PM1_CONTROL_OFFSET)
    })
}

/// `acpi-s3`: writes SLP_TYP = 5 (S3 on Intel chipsets) with SLP_EN to PM1 control, reads
/// SLP_TYP back (the chipset keeps it), then writes the old value back (SLP_EN clear).
pub fn acpi_sleep_request() -> super::verdict::Attempt {
    use super::verdict::Attempt;
    let Some(control) = pm1_control() else {
        return Attempt::NotApplicable("no PIIX4 or ICH9 power management");
    };
    // SAFETY: reading PM1 control changes nothing.
    let before = unsafe { port::inw(control) };
    if before == u16::MAX {
        return Attempt::NotApplicable("PM I/O space off");
    }
    let request = (before & !SLEEP_TYPE_MASK) | (INTEL_S3 << SLEEP_TYPE_SHIFT) | SLEEP_ENABLE;
    // SAFETY: the attack's sleep request (a state QEMU's chipsets do not enter), then the old
    // value back without SLP_EN.
    let after = unsafe {
        port::outw(control, request);
        let after = port::inw(control);
        port::outw(control, before & !SLEEP_ENABLE);
        after
    };
    if (after & SLEEP_TYPE_MASK) >> SLEEP_TYPE_SHIFT == INTEL_S3 {
        Attempt::Done
    } else if crate::arch::hypercall::rampart().is_some() {
        Attempt::NoEffect
    } else {
        Attempt::NotApplicable("the chipset kept no sleep type")
    }
}
