//! The boot-time PCI sweep: before the guest's first instruction, Bus Master Enable is turned
//! off on every function (firmware leaves it on for the devices it used, e.g. the IDE
//! controller it booted from), and the bus-master register blocks of IDE controllers are
//! recorded so that their ports exit: some devices start DMA whatever Bus Master Enable says
//! (Bochs's IDE model does), so the registers that start it must be mediated too.
#![forbid(unsafe_code)]

use super::pci::{self, COMMAND_BUS_MASTER};
use super::pci_access::{self, ENABLE};
use super::ports::{PortBlock, MAX_DMA_BLOCKS};
use super::sleep::{SleepBlocks, PM1_CONTROL_LENGTH};

/// Class code of an IDE controller (PCI Code and ID Assignment: 01h mass storage, 01h IDE).
const CLASS_IDE: u32 = 0x0101;
/// Programming interface bit 7: bus mastering capable; BAR4: its register block (PCI IDE 1.0).
const PROG_IF_BUS_MASTER: u32 = 1 << 7;
const BAR4: u8 = 0x20;
const BUS_MASTER_PORTS: u16 = 16;
const VENDOR_NONE: u32 = 0xffff;
/// Header type bit 7: multi-function device.
const MULTI_FUNCTION: u32 = 1 << 23;
const CLASS_REVISION: u8 = 0x08;

/// What the sweep found and did.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    pub functions: usize,
    pub bus_master_cleared: usize,
    pub dma_blocks: heapless::Vec<PortBlock, MAX_DMA_BLOCKS>,
    /// Bus-master IDE register blocks beyond [`MAX_DMA_BLOCKS`]: not trapped, so the boot
    /// must stop (fail closed) rather than let the guest start their DMA.
    pub untrapped_dma_blocks: usize,
    /// ACPI sleep-control registers: the chipset's PM1 control (here) and the FADT's (added
    /// at boot). More than fit stop the boot, like untrapped DMA blocks.
    pub sleep: SleepBlocks,
    pub untrapped_sleep_blocks: usize,
    /// Configuration addresses of the functions whose power-management I/O base the guest
    /// may not move (PIIX4 ACPI, ICH9 LPC): a moved block would leave the trapped ports.
    pub power_management: [u32; MAX_POWER_MANAGEMENT],
}

/// PIIX4's power-management function (82371AB function 3: PMBA at 0x40, bits 15:6) and
/// ICH9's LPC bridge (PMBASE at 0x40, bits 15:7): PM1 control is at base + 4 on both (82371AB datasheet 7.2; ICH9 datasheet
/// 13.8.3). Bochs's i440fx and QEMU's i440fx use the first, QEMU's q35 the second.
const PIIX4_ACPI: u32 = 0x7113_8086;
const ICH9_LPC: u32 = 0x2918_8086;
pub const POWER_MANAGEMENT_BASE: u8 = 0x40;
const PM1_CONTROL_OFFSET: u16 = 4;
pub const MAX_POWER_MANAGEMENT: usize = 2;

impl Sweep {
    /// Traps a sleep-control block found elsewhere (the FADT's).
    pub fn add_sleep_block(&mut self, block: PortBlock) {
        if !self.sleep.add(block) {
            self.untrapped_sleep_blocks += 1;
        }
    }

    /// True if the guest may not change `address`'s power-management I/O base.
    pub fn is_power_management(&self, address: u32) -> bool {
        const FUNCTION_MASK: u32 = 0x00ff_ff00;
        self.power_management
            .iter()
            .any(|&f| f != 0 && f & FUNCTION_MASK == address & FUNCTION_MASK)
    }
}

/// Configuration address of bus/device/function (register 0).
fn address(bus: u32, device: u32, function: u32) -> u32 {
    ENABLE | (bus << 16) | (device << 11) | (function << 8)
}

/// Sweeps every bus, device and function through configuration mechanism #1.
pub fn run() -> Sweep {
    let mut sweep = Sweep::default();
    for bus in 0..256 {
        for device in 0..32 {
            let first = address(bus, device, 0);
            if pci_access::read(first, 0, 4) & VENDOR_NONE == VENDOR_NONE {
                continue;
            }
            let header = pci_access::read(first, pci::HEADER_TYPE & !3, 4);
            let functions = if header & MULTI_FUNCTION != 0 { 8 } else { 1 };
            for function in 0..functions {
                let at = address(bus, device, function);
                if pci_access::read(at, 0, 4) & VENDOR_NONE != VENDOR_NONE {
                    visit(at, &mut sweep);
                }
            }
        }
    }
    sweep
}

/// Traps the chipset's PM1 control block if `at` is a power-management function, whether or
/// not its I/O space is on yet (the guest may turn it on; it may not move the base).
fn power_management(at: u32, sweep: &mut Sweep) {
    let base_mask = match pci_access::read(at, 0, 4) {
        PIIX4_ACPI => 0xffc0,
        ICH9_LPC => 0xff80,
        _ => return,
    };
    if let Some(slot) = sweep.power_management.iter_mut().find(|f| **f == 0) {
        *slot = at;
    }
    let base = (pci_access::read(at, POWER_MANAGEMENT_BASE, 4) & base_mask) as u16;
    if base != 0 {
        sweep.add_sleep_block((base + PM1_CONTROL_OFFSET, PM1_CONTROL_LENGTH));
    }
}

fn visit(at: u32, sweep: &mut Sweep) {
    sweep.functions += 1;
    power_management(at, sweep);
    let command = pci_access::read(at, pci::COMMAND, 2);
    if command & COMMAND_BUS_MASTER != 0 {
        pci_access::write(
            at,
            pci::ConfigWrite {
                offset: pci::COMMAND,
                size: 2,
                value: command & !COMMAND_BUS_MASTER,
            },
        );
        sweep.bus_master_cleared += 1;
    }
    let class = pci_access::read(at, CLASS_REVISION, 4);
    let bar4 = pci_access::read(at, BAR4, 4);
    let is_bus_master_ide = class >> 16 == CLASS_IDE && (class >> 8) & PROG_IF_BUS_MASTER != 0;
    let base = (bar4 & 0xfffc) as u16;
    let io_block = bar4 & pci::BAR_IO != 0 && base != 0;
    let mut pushed = || sweep.dma_blocks.push((base, BUS_MASTER_PORTS)).is_ok();
    if is_bus_master_ide && io_block && !pushed() {
        sweep.untrapped_dma_blocks += 1;
    }
}
