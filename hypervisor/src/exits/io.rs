//! I/O-instruction exits: only ports set in the I/O bitmaps exit, i.e. COM2, which the
//! hypervisor keeps for its debugger (DESIGN.md "Devices and interrupts"). The guest sees an
//! absent device: reads return all ones, writes are dropped.

use super::{Exception, Resume};
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use x86::vmx::vmcs::ro;

/// COM2's eight registers.
pub const COM2_BASE: u16 = 0x2f8;
pub const COM2_PORTS: u16 = 8;

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
        // String I/O to a hypervisor port would need guest-memory access on its behalf.
        return Resume::Inject(Exception::GeneralProtection);
    }
    if access.is_in() {
        let mask = match access.size() {
            1 => 0xff,
            2 => 0xffff,
            _ => 0xffff_ffff,
        };
        regs.rax |= mask;
        if access.size() == 4 {
            regs.rax &= 0xffff_ffff; // a 32-bit destination zero-extends
        }
    }
    Resume::NextInstruction
}

/// Sets the bits for COM2 in I/O bitmap A (ports 0000H-7FFFH, one bit each, SDM 25.6.4).
pub fn deny_com2(bitmap_a: &mut [u8; 4096]) {
    for port in COM2_BASE..COM2_BASE + COM2_PORTS {
        bitmap_a[usize::from(port / 8)] |= 1 << (port % 8);
    }
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
    fn bitmap_covers_exactly_com2() {
        let mut bitmap = [0u8; 4096];
        deny_com2(&mut bitmap);
        assert_eq!(bitmap[0x2f8 / 8], 0xff);
        assert_eq!(bitmap.iter().map(|b| b.count_ones()).sum::<u32>(), 8);
    }
}
