//! PCI configuration mechanism #1 as the hypervisor drives it on the guest's behalf: the
//! guest's address-port value is kept here (the real port only ever holds the hypervisor's
//! own selections, made under a lock, so vCPUs cannot interleave each other's accesses).
#![allow(unsafe_code)]

use super::pci::{self, ConfigWrite, DeviceFacts, BAR_IO, BAR_TYPE_64, BAR_TYPE_MASK};
use super::ports::{PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA};
use core::sync::atomic::{AtomicU32, Ordering};
use x86::io::{inb, inl, inw, outb, outl, outw};

/// The guest's last write to the address port (bit 31 enable, bus/device/function, register).
static GUEST_ADDRESS: AtomicU32 = AtomicU32::new(0);
static PORTS: spin::Mutex<()> = spin::Mutex::new(());
/// Address-port bit 31: configuration space enabled; bits 7:2: dword register.
pub const ENABLE: u32 = 1 << 31;
const REGISTER_MASK: u32 = 0xfc;

pub fn guest_address() -> u32 {
    GUEST_ADDRESS.load(Ordering::SeqCst)
}

/// The function the guest's address port selects and the byte it names through data-port
/// byte `offset`; `None` while the address port has configuration space disabled.
pub fn guest_selection(offset: u8) -> Option<(u32, u8)> {
    let address = guest_address();
    (address & ENABLE != 0).then(|| (address, (address & REGISTER_MASK) as u8 + offset))
}
pub fn set_guest_address(value: u32) {
    GUEST_ADDRESS.store(value, Ordering::SeqCst);
}

/// IN of `size` bytes (1, 2, else 4) from `port`.
///
/// # Safety
/// Reading `port` must have no effect the hypervisor has not vetted.
unsafe fn in_sized(port: u16, size: u8) -> u32 {
    // SAFETY: delegated to the caller.
    unsafe {
        match size {
            1 => u32::from(inb(port)),
            2 => u32::from(inw(port)),
            _ => inl(port),
        }
    }
}

/// OUT of the low `size` bytes (1, 2, else 4) of `value` to `port`.
///
/// # Safety
/// The write must be one the hypervisor vetted.
unsafe fn out_sized(port: u16, size: u8, value: u32) {
    // SAFETY: delegated to the caller.
    unsafe {
        match size {
            1 => outb(port, value as u8),
            2 => outw(port, value as u16),
            _ => outl(port, value),
        }
    }
}

/// Reads `size` bytes at byte `offset` of configuration space of the function `address`
/// (an address-port value; its register bits are replaced).
pub fn read(address: u32, offset: u8, size: u8) -> u32 {
    let _guard = PORTS.lock();
    let select = (address & !REGISTER_MASK) | u32::from(offset) & REGISTER_MASK | ENABLE;
    let port = PCI_CONFIG_DATA + u16::from(offset & 3);
    // SAFETY: mechanism #1 ports, serialised by PORTS; reading configuration space has no side
    // effects on memory.
    unsafe {
        outl(PCI_CONFIG_ADDRESS, select);
        in_sized(port, size)
    }
}

/// The data-port I/O that performs `write` exactly: the port of its first byte, its size and
/// value, so the byte enables the device sees are the guest's. `None` for a write that does
/// not fit in the data dword (no such write reaches here: `ports::classify_access` refuses
/// them), rather than a reshaped one.
pub fn data_port_io(write: ConfigWrite) -> Option<(u16, u8, u32)> {
    let offset = write.offset & 3;
    let fits = matches!(write.size, 1 | 2 | 4) && offset + write.size <= 4;
    fits.then(|| (PCI_CONFIG_DATA + u16::from(offset), write.size, write.value))
}

/// Writes a filtered configuration write (see [`pci::decide`]).
pub fn write(address: u32, write: ConfigWrite) {
    let Some((port, size, value)) = data_port_io(write) else {
        return;
    };
    let _guard = PORTS.lock();
    let select = (address & !REGISTER_MASK) | u32::from(write.offset) & REGISTER_MASK | ENABLE;
    // SAFETY: as in `read`; the value passed the filter (no bus mastering, BARs in the MMIO
    // window), so the device cannot reach RAM through it.
    unsafe {
        outl(PCI_CONFIG_ADDRESS, select);
        out_sized(port, size, value)
    }
}

/// What the filter needs to know about the function at `address` for `write`.
pub fn facts(address: u32, write: ConfigWrite) -> DeviceFacts {
    const HEADER_TYPE_MASK: u32 = 0x7f;
    let header = (read(address, pci::HEADER_TYPE & !3, 4) >> 16) & HEADER_TYPE_MASK;
    let register = write.offset & !3;
    let current_bar = read(address, register, 4);
    let upper_half_of_64bit = register > pci::FIRST_BAR && register <= pci::LAST_BAR && {
        let below = read(address, register - 4, 4);
        below & BAR_IO == 0 && below & BAR_TYPE_MASK == BAR_TYPE_64
    };
    let rom = register == pci::expansion_rom(header == 0);
    let sized = write.value != u32::MAX && write.value != current_bar && !upper_half_of_64bit;
    let bar_size = if sized {
        let _guard = PORTS.lock();
        let select = (address & !REGISTER_MASK) | u32::from(register) | ENABLE;
        // SAFETY: the standard sizing sequence (PCI 3.0 6.2.5.1) on the BAR the guest is
        // writing anyway: all ones, read back, restore; serialised by PORTS.
        let readback = unsafe {
            outl(PCI_CONFIG_ADDRESS, select);
            outl(PCI_CONFIG_DATA, u32::MAX);
            let readback = inl(PCI_CONFIG_DATA);
            outl(PCI_CONFIG_DATA, current_bar);
            readback
        };
        pci::bar_size(readback, rom)
    } else {
        0
    };
    DeviceFacts {
        is_endpoint: header == 0,
        current_bar,
        upper_half_of_64bit,
        bar_size,
        power_management: super::DMA_BLOCKS
            .get()
            .is_some_and(|sweep| sweep.is_power_management(address)),
    }
}

/// Forwards a guest write to the reset-control port 0xCF9 (a platform reset is the guest's
/// own business, like a triple fault).
pub fn write_reset_control(value: u8) {
    // SAFETY: 0xCF9 only resets the platform; nothing the hypervisor holds survives a reset
    // anyway, and the guest could triple-fault instead.
    unsafe { outb(super::ports::RESET_CONTROL, value) };
}

/// Writes a sleep-control register for the guest, as the guest wrote it (`value` does not set
/// SLP_EN: `devices::sleep` checked it).
pub fn write_sleep_control(port: u16, size: u8, value: u32) {
    // SAFETY: `port` lies in a PM1 control or sleep control register the sweep or the FADT
    // named; without SLP_EN the write changes no power state (SCI_EN, BM_RLD, GBL_RLS, SLP_TYP
    // alone, ACPI 6.5 4.8.3.2.1), and nothing in it reaches memory.
    unsafe { out_sized(port, size, value) }
}

/// Reads a trapped DMA or sleep-control register for the guest (status, addresses, control
/// bits: reading starts nothing).
pub fn read_port(port: u16, size: u8) -> u32 {
    // SAFETY: `port` lies in a DMA register block the sweep found (a PCI I/O BAR) or a sleep
    // control register; reads of those registers have no side effects on memory.
    unsafe { in_sized(port, size) }
}
