//! I/O-instruction exits: only the mediated ports of `devices::ports` exit. COM2 (the
//! debugger's) and the ISA DMA controllers are absent for the guest (reads all ones, writes
//! dropped, DMA writes audited); the APM control port's SMI is refused, and so is every ACPI
//! sleep request (`devices::sleep`); PCI configuration
//! goes through `devices::pci`'s filter. An access is classified by every byte it touches
//! (`ports::classify_access`): one that spans a mediated register and anything else is
//! dropped (audited, rule `port-access`) or reads all ones, never forwarded in another shape.

use super::resume::{audit_register, Exception, Resume};
use crate::devices::pci::{self, ConfigWrite, Verdict};
use crate::devices::pci_access;
use crate::devices::ports::{self, Port, PCI_CONFIG_ADDRESS, RESET_CONTROL};
use crate::devices::sleep;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule};
use x86::vmx::vmcs::ro;

/// I/O exit qualification (SDM Vol. 3C 28.2.1, Table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoAccess(pub u64);

impl IoAccess {
    /// Access size in bytes (bits 2:0 hold size - 1).
    pub fn size(&self) -> u8 {
        (self.0 & 0b111) as u8 + 1
    }
    pub fn is_in(&self) -> bool {
        self.0 & (1 << 3) != 0
    }
    /// INS/OUTS (bit 4).
    pub fn is_string(&self) -> bool {
        self.0 & (1 << 4) != 0
    }
    pub fn port(&self) -> u16 {
        (self.0 >> 16) as u16
    }
}

pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let access = IoAccess(vmcs.get(ro::EXIT_QUALIFICATION));
    if access.is_string() {
        // String I/O to a mediated port would need guest-memory access on its behalf.
        return Resume::Inject(Exception::GeneralProtection);
    }
    let (port, size) = (access.port(), access.size());
    let value = (regs.rax & mask(size)) as u32;
    let kind = ports::classify_access(port, size, &crate::devices::trapped());
    match (kind, access.is_in()) {
        (Port::PciAddress(PCI_CONFIG_ADDRESS), true) if size == 4 => {
            complete_in(regs, access, pci_access::guest_address())
        }
        (Port::PciAddress(PCI_CONFIG_ADDRESS), false) if size == 4 => {
            pci_access::set_guest_address(value)
        }
        (Port::PciAddress(RESET_CONTROL), false) if size == 1 => {
            pci_access::write_reset_control(value as u8)
        }
        (Port::PciData(offset), true) => {
            let selected = pci_access::guest_selection(offset);
            let data = selected.map_or(u32::MAX, |(function, at)| {
                pci_access::read(function, at, size)
            });
            complete_in(regs, access, data)
        }
        (Port::PciData(offset), false) => pci_write(vmcs, offset, size, value),
        (Port::Straddling, false) => {
            let detail =
                (u64::from(port) << 32) | (u64::from(size) << 24) | u64::from(value & 0xff_ffff);
            audit_register(vmcs, Rule::PortAccess, Access::WRITE, 0, detail);
        }
        (Port::SmiTrigger, false) => refuse(vmcs, Rule::Smi, access, value),
        (Port::LegacyDma | Port::BusMaster, false) => refuse(vmcs, Rule::Dma, access, value),
        (Port::SleepControl(block), false) => {
            if sleep::sets_sleep_enable(block, port, size, value) {
                refuse(vmcs, Rule::SleepState, access, value);
            } else {
                pci_access::write_sleep_control(port, size, value);
            }
        }
        (Port::BusMaster | Port::SleepControl(_), true) => {
            complete_in(regs, access, pci_access::read_port(port, size))
        }
        (_, true) => complete_in(regs, access, u32::MAX),
        (_, false) => {}
    }
    Resume::NextInstruction
}

fn mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

/// Puts an IN's result in AL/AX/EAX (a 32-bit destination zero-extends, 8/16 bits merge).
fn complete_in(regs: &mut GuestRegisters, access: IoAccess, value: u32) {
    let mask = mask(access.size());
    let keep = if access.size() == 4 { 0 } else { !mask };
    regs.rax = (regs.rax & keep) | (u64::from(value) & mask);
}

/// A configuration write through 0xCFC, filtered by `pci::decide`; a refused or trimmed one is
/// audited with the configuration address as GPA and the value written as detail.
fn pci_write(vmcs: &Vmcs, offset: u8, size: u8, value: u32) {
    let Some((address, offset)) = pci_access::guest_selection(offset) else {
        return;
    };
    let write = ConfigWrite {
        offset,
        size,
        value,
    };
    let facts = pci_access::facts(address, write);
    match pci::decide(write, facts, crate::state::get().mmio_window) {
        Verdict::Forward(write) => pci_access::write(address, write),
        Verdict::Trimmed(write, _) => {
            audit_register(vmcs, Rule::Dma, Access::WRITE, address.into(), value.into());
            pci_access::write(address, write);
        }
        Verdict::Refuse(refusal) => {
            let rule = match refusal {
                pci::Refusal::BusMaster => Rule::Dma,
                _ => Rule::DeviceBar,
            };
            audit_register(vmcs, rule, Access::WRITE, address.into(), value.into());
        }
    }
}

/// A write to a port the guest may not use: dropped, audited (detail: port << 32 | value).
fn refuse(vmcs: &Vmcs, rule: Rule, access: IoAccess, value: u32) {
    let detail = (u64::from(access.port()) << 32) | u64::from(value);
    audit_register(vmcs, rule, Access::WRITE, 0, detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_al_from_com2_line_status() {
        // IN AL, DX with DX = 0x2fd: size 1, direction in, port in bits 31:16.
        let q = IoAccess((1 << 3) | (0x2fd << 16));
        assert_eq!(
            (q.size(), q.is_in(), q.is_string(), q.port()),
            (1, true, false, 0x2fd)
        );
    }

    #[test]
    fn in_merges_narrow_results() {
        let mut regs = GuestRegisters {
            rax: 0xdead_beef_1234_5678,
            ..Default::default()
        };
        complete_in(&mut regs, IoAccess(1 << 3), 0xab);
        assert_eq!(regs.rax, 0xdead_beef_1234_56ab);
        complete_in(&mut regs, IoAccess((1 << 3) | 3), 0xffff_ffff);
        assert_eq!(regs.rax, 0xffff_ffff);
    }
}
