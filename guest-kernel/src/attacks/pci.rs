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
