//! `ide-dma`: a compromised kernel gets a disk controller to write kernel read-only data. It
//! finds the PCI IDE controller (class 01:01, bus-master capable: Bochs's PIIX3 at 00:01.1),
//! builds a one-entry PRD table and has the primary master READ DMA sector 0 into
//! [`attack::DMA_TARGET`] by physical address: a sector of the kernel's read-only data that EPT
//! guards against the CPU only. It drives the bus-master engine first with Bus Master Enable as
//! found (Bochs's PIIX3 ignores the bit; OVMF leaves it on for the controller it booted from),
//! then sets the bit and tries again. Natively the bytes change (then they are put back through
//! the direct map); under Rampart the engine's registers are the hypervisor's (refused and
//! audited, `dma`) and the bit is off and cannot be set. QEMU q35 has AHCI only.
#![allow(unsafe_code)] // the attack itself; each block says why it is harmless natively

use super::ipi::{self, wait_for, WAIT_TICKS};
use super::pci::{self, COMMAND, COMMAND_BUS_MASTER, COMMAND_IO};
use super::verdict::Attempt;
use crate::arch::{attack, hypercall, port};
use crate::console::kprintln;
use crate::mm::layout::{phys_to_virt, KERNEL_VIRT_OFFSET};

/// Class 01h (mass storage), subclass 01h (IDE).
const IDE_CLASS: u16 = 0x0101;
/// Programming interface bit 7: bus-master capable.
const PROG_IF_BUS_MASTER: u32 = 1 << 15;
/// BAR4: the bus-master registers (I/O).
const BUS_MASTER_BAR: u8 = 4;
/// Bus-master registers of the primary channel (SFF-8038i): command, status, PRD pointer.
const BM_COMMAND: u16 = 0;
const BM_STATUS: u16 = 2;
const BM_PRD: u16 = 4;
const BM_START: u8 = 1 << 0;
/// Command bit 3: the device writes memory (a read from the disk).
const BM_WRITE_MEMORY: u8 = 1 << 3;
const BM_STATUS_ACTIVE: u8 = 1 << 0;
const BM_STATUS_ERROR: u8 = 1 << 1;
const BM_STATUS_INTERRUPT: u8 = 1 << 2;
/// Primary ATA channel (compatibility mode): task file and device control.
const ATA_SECTOR_COUNT: u16 = 0x1f2;
const ATA_LBA_LOW: u16 = 0x1f3;
const ATA_LBA_MID: u16 = 0x1f4;
const ATA_LBA_HIGH: u16 = 0x1f5;
const ATA_DEVICE: u16 = 0x1f6;
const ATA_COMMAND: u16 = 0x1f7;
const ATA_CONTROL: u16 = 0x3f6;
const ATA_DEVICE_MASTER_LBA: u8 = 0xe0;
const ATA_READ_DMA: u8 = 0xc8;
const ATA_STATUS_BUSY: u8 = 1 << 7;
/// Device control: no interrupts (nIEN), software reset (SRST).
const ATA_CONTROL_NIEN: u8 = 1 << 1;
const ATA_CONTROL_SRST: u8 = 1 << 2;
/// PRD entry flag: end of table.
const PRD_END: u32 = 1 << 31;
/// Status polls while waiting for the drive.
const BUSY_POLLS: u32 = 100_000;

fn target_physical() -> u64 {
    attack::dma_target_address() - KERNEL_VIRT_OFFSET
}

/// True if some byte of the target is no longer what the image holds.
fn target_changed() -> bool {
    (0..attack::DMA_TARGET_LENGTH).any(|i| attack::read_dma_target(i) != attack::DMA_TARGET_FILL)
}

/// Programs the primary channel's bus-master engine and the drive to READ DMA sector 0 through
/// the PRD `table`; returns the bus-master status, or `None` as soon as the hypervisor refused
/// (audited) a register write, so that the attack leaves one record.
///
/// # Safety
/// Natively this makes the controller write the PRD table's target: the caller's business.
unsafe fn read_dma(bm: u16, table: u64, audits_before: i64) -> Option<u8> {
    // SAFETY: the caller's contract; the registers belong to the IDE controller found on PCI.
    unsafe {
        port::outb(bm + BM_COMMAND, 0);
        if ipi::audit_count() > audits_before {
            return None;
        }
        port::outb(bm + BM_STATUS, BM_STATUS_ERROR | BM_STATUS_INTERRUPT);
        port::outl(bm + BM_PRD, table as u32);
        port::outb(bm + BM_COMMAND, BM_WRITE_MEMORY);
        port::outb(ATA_CONTROL, ATA_CONTROL_NIEN);
        port::outb(ATA_DEVICE, ATA_DEVICE_MASTER_LBA);
        for _ in 0..BUSY_POLLS {
            if port::inb(ATA_COMMAND) & ATA_STATUS_BUSY == 0 {
                break;
            }
        }
        port::outb(ATA_SECTOR_COUNT, 1);
        port::outb(ATA_LBA_LOW, 0);
        port::outb(ATA_LBA_MID, 0);
        port::outb(ATA_LBA_HIGH, 0);
        port::outb(ATA_COMMAND, ATA_READ_DMA);
        port::outb(bm + BM_COMMAND, BM_WRITE_MEMORY | BM_START);
        let done = || port::inb(bm + BM_STATUS) & BM_STATUS_INTERRUPT != 0 || target_changed();
        wait_for(WAIT_TICKS, done);
        let status = port::inb(bm + BM_STATUS);
        port::outb(bm + BM_COMMAND, 0);
        // A drive left inside a DMA command is reset (software reset, interrupts still off).
        if status & BM_STATUS_ACTIVE != 0 {
            port::outb(ATA_CONTROL, ATA_CONTROL_NIEN | ATA_CONTROL_SRST);
            port::outb(ATA_CONTROL, ATA_CONTROL_NIEN);
        }
        let _ = port::inb(ATA_COMMAND);
        Some(status)
    }
}

/// A one-entry PRD table in a scratch frame: the DMA target sector, end of table.
fn prd_table() -> Option<u64> {
    let mut prd = [0u8; 8];
    prd[..4].copy_from_slice(&(target_physical() as u32).to_le_bytes());
    prd[4..].copy_from_slice(&(attack::DMA_TARGET_LENGTH as u32 | PRD_END).to_le_bytes());
    super::list::scratch_frame(&prd)
}

pub fn ide_dma() -> Attempt {
    let before = ipi::audit_count();
    let Some(ide) = pci::find_class(IDE_CLASS) else {
        return Attempt::NotApplicable("no PCI IDE controller");
    };
    let (bm, io) = ide.bar(BUS_MASTER_BAR);
    if ide.read32(pci::CLASS_REVISION) & PROG_IF_BUS_MASTER == 0 || !io || bm == 0 {
        return Attempt::NotApplicable("IDE controller without bus mastering");
    }
    let bm = bm as u16;
    let command = ide.read16(COMMAND);
    let Some(table) = prd_table() else {
        return Attempt::NotApplicable("out of memory");
    };
    // First the DMA engine alone, with Bus Master Enable as found (some engines ignore it:
    // Bochs's PIIX3 does); only if that moved nothing, set Bus Master Enable and try again.
    // Each step stops the attack once the hypervisor refused (audited) something.
    let mut enabled = command;
    let mut status = 0;
    for set_bus_master in [false, true] {
        if set_bus_master {
            // SAFETY: natively the controller may then write memory, but only where the PRD
            // table above points; restored at the end.
            unsafe { ide.write16(COMMAND, command | COMMAND_IO | COMMAND_BUS_MASTER) };
            enabled = ide.read16(COMMAND);
            if ipi::audit_count() > before {
                return Attempt::NoEffect;
            }
        }
        // SAFETY: the primary channel's drive is the boot disk, which nothing uses after boot
        // services; the transfer reads sector 0 into the target sector only (PRD table above).
        match unsafe { read_dma(bm, table, before) } {
            Some(s) => status = s,
            None => return Attempt::NoEffect,
        }
        if target_changed() {
            break;
        }
    }
    let changed = target_changed();
    let (last0, last1) = (
        attack::read_dma_target(attack::DMA_TARGET_LENGTH - 2),
        attack::read_dma_target(attack::DMA_TARGET_LENGTH - 1),
    );
    kprintln!(
        "attacks: detail: ide-dma: 00:{:02x}.{} bus master at {bm:#x}, command {command:#x} -> {enabled:#x}, status {status:#x}, target {:#x} ends {last0:#04x} {last1:#04x}",
        ide.device,
        ide.function,
        target_physical()
    );
    if command & COMMAND_BUS_MASTER == 0 || hypercall::rampart().is_none() {
        // SAFETY: the command register as it was (without bus mastering under Rampart, where
        // setting it again would only be refused and audited a second time).
        unsafe { ide.write16(COMMAND, command) };
    }
    if changed && hypercall::rampart().is_some() {
        // The DMA went through: the sector of rodata stays as the device wrote it (EPT keeps
        // the CPU from putting it back), and nothing reads it.
        return Attempt::Done;
    }
    if changed {
        let target = phys_to_virt(target_physical()) as *mut u8;
        // SAFETY: natively the direct map is writable; the sector gets the image's bytes back.
        unsafe {
            core::ptr::write_bytes(target, attack::DMA_TARGET_FILL, attack::DMA_TARGET_LENGTH)
        };
        return Attempt::Done;
    }
    if ipi::audit_count() > before {
        return Attempt::NoEffect;
    }
    Attempt::NotApplicable("no DMA happened")
}
