//! The guest's registers as GDB sees them: GPRs saved by the exit stub plus RSP, RIP, RFLAGS
//! and segment state from the VMCS guest-state area (SDM Vol. 3C 25.4.1), mapped to
//! `gdbstub_arch`'s x86-64 layout (GDB's `64bit-core.xml`: RAX, RBX, RCX, RDX, RSI, RDI, RBP,
//! RSP, R8-R15, RIP, EFLAGS, CS, SS, DS, ES, FS, GS).
#![forbid(unsafe_code)]

use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::{Vmcs, VmcsError};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use x86::vmx::vmcs::guest;

/// RFLAGS bit 1 is reserved and always 1 (SDM Vol. 1 3.4.3).
const RFLAGS_RESERVED_ONE: u64 = 1 << 1;
/// RFLAGS bits GDB may change: CF, PF, AF, ZF, SF, DF, OF, RF, AC, ID (not TF: the stub steps
/// with MTF; not IF, IOPL and the other system flags).
const RFLAGS_WRITABLE: u64 = 0x0025_0cd5;

/// Everything the stub reads or changes about the stopped guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestFrame {
    pub gprs: GuestRegisters,
    pub rsp: u64,
    pub rip: u64,
    pub rflags: u64,
    /// CS, SS, DS, ES, FS, GS selectors.
    pub selectors: [u16; 6],
    pub fs_base: u64,
    pub gs_base: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// A register write GDB asked for that the stub refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOnlyRegister;

const SELECTOR_FIELDS: [u32; 6] = [
    guest::CS_SELECTOR,
    guest::SS_SELECTOR,
    guest::DS_SELECTOR,
    guest::ES_SELECTOR,
    guest::FS_SELECTOR,
    guest::GS_SELECTOR,
];

impl GuestFrame {
    /// Reads the VMCS part; `gprs` comes from the exit stub.
    pub fn load(vmcs: &Vmcs, gprs: &GuestRegisters) -> Result<Self, VmcsError> {
        let mut selectors = [0u16; 6];
        for (slot, field) in selectors.iter_mut().zip(SELECTOR_FIELDS) {
            *slot = vmcs.read(field)? as u16;
        }
        Ok(Self {
            gprs: *gprs,
            rsp: vmcs.read(guest::RSP)?,
            rip: vmcs.read(guest::RIP)?,
            rflags: vmcs.read(guest::RFLAGS)?,
            selectors,
            fs_base: vmcs.read(guest::FS_BASE)?,
            gs_base: vmcs.read(guest::GS_BASE)?,
            cr0: vmcs.read(guest::CR0)?,
            cr3: vmcs.read(guest::CR3)?,
            cr4: vmcs.read(guest::CR4)?,
            efer: vmcs.read(guest::IA32_EFER_FULL)?,
        })
    }

    /// Writes back what GDB may change: GPRs, RSP, RIP, RFLAGS.
    pub fn store(&self, vmcs: &Vmcs, gprs: &mut GuestRegisters) -> Result<(), VmcsError> {
        *gprs = self.gprs;
        vmcs.write(guest::RSP, self.rsp)?;
        vmcs.write(guest::RIP, self.rip)?;
        vmcs.write(guest::RFLAGS, self.rflags)
    }

    /// In GDB's order.
    pub fn to_gdb(self) -> X86_64CoreRegs {
        let g = &self.gprs;
        let mut regs = X86_64CoreRegs {
            regs: [
                g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, self.rsp, g.r8, g.r9, g.r10,
                g.r11, g.r12, g.r13, g.r14, g.r15,
            ],
            eflags: self.rflags as u32,
            rip: self.rip,
            ..Default::default()
        };
        let s = &mut regs.segments;
        let sel = self.selectors.map(u32::from);
        (s.cs, s.ss, s.ds, s.es, s.fs, s.gs) = (sel[0], sel[1], sel[2], sel[3], sel[4], sel[5]);
        regs
    }

    /// Takes GDB's values. Segment selectors cannot change (their hidden parts live in the
    /// VMCS and would go stale); RFLAGS keeps its reserved and system bits.
    pub fn load_gdb(&mut self, regs: &X86_64CoreRegs) -> Result<(), ReadOnlyRegister> {
        let s = &regs.segments;
        let wanted = [s.cs, s.ss, s.ds, s.es, s.fs, s.gs];
        if wanted != self.selectors.map(u32::from) {
            return Err(ReadOnlyRegister);
        }
        let r = regs.regs;
        let g = &mut self.gprs;
        (g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp) =
            (r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
        self.rsp = r[7];
        (g.r8, g.r9, g.r10, g.r11) = (r[8], r[9], r[10], r[11]);
        (g.r12, g.r13, g.r14, g.r15) = (r[12], r[13], r[14], r[15]);
        self.rip = regs.rip;
        self.rflags = (self.rflags & !RFLAGS_WRITABLE)
            | (u64::from(regs.eflags) & RFLAGS_WRITABLE)
            | RFLAGS_RESERVED_ONE;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> GuestFrame {
        GuestFrame {
            gprs: GuestRegisters {
                rax: 1,
                rbx: 2,
                rcx: 3,
                rdx: 4,
                rsi: 5,
                rdi: 6,
                rbp: 7,
                r8: 8,
                r15: 15,
                ..Default::default()
            },
            rsp: 0x7ff0,
            rip: 0x40_1000,
            rflags: 0x246,
            selectors: [0x8, 0x10, 0x10, 0x10, 0, 0],
            ..Default::default()
        }
    }

    #[test]
    fn gdb_order_puts_rsp_eighth_and_rbx_second() {
        let regs = frame().to_gdb();
        assert_eq!(regs.regs[..8], [1, 2, 3, 4, 5, 6, 7, 0x7ff0]);
        assert_eq!((regs.regs[8], regs.regs[15]), (8, 15));
        assert_eq!((regs.rip, regs.eflags), (0x40_1000, 0x246));
        assert_eq!((regs.segments.cs, regs.segments.ss), (0x8, 0x10));
    }

    #[test]
    fn round_trip_and_changes() {
        let mut f = frame();
        let mut regs = f.to_gdb();
        f.load_gdb(&regs).unwrap();
        assert_eq!(f, frame());
        regs.regs[1] = 0xb0b;
        regs.regs[7] = 0x6000;
        regs.rip = 0x40_2000;
        f.load_gdb(&regs).unwrap();
        assert_eq!((f.gprs.rbx, f.rsp, f.rip), (0xb0b, 0x6000, 0x40_2000));
    }

    #[test]
    fn rflags_keeps_reserved_and_system_bits() {
        let mut f = frame();
        f.rflags = 0x3246; // IOPL 3
        let mut regs = f.to_gdb();
        regs.eflags = 0x100; // only TF: not writable, and clears the arithmetic flags
        f.load_gdb(&regs).unwrap();
        assert_eq!(f.rflags, 0x3202, "IOPL, IF and bit 1 stay");
    }

    #[test]
    fn selectors_are_read_only() {
        let mut f = frame();
        let mut regs = f.to_gdb();
        regs.segments.cs = 0x33;
        assert_eq!(f.load_gdb(&regs), Err(ReadOnlyRegister));
        assert_eq!(f, frame());
    }
}
