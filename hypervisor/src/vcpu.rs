//! The guest's general-purpose registers as saved by the VM-exit entry stub.

/// GPRs in the order the exit stub pushes them (RAX at the lowest address). RSP lives in the
/// VMCS guest-state area, not here.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

// The exit stub in arch::vm_entry hard-codes these offsets.
const _: () = assert!(core::mem::size_of::<GuestRegisters>() == 15 * 8);
const _: () = assert!(core::mem::offset_of!(GuestRegisters, rdi) == 0x28);
const _: () = assert!(core::mem::offset_of!(GuestRegisters, r15) == 0x70);

/// Register number 4 in instruction encodings: RSP, which is not in [`GuestRegisters`].
pub const GPR_RSP: u8 = 4;

impl GuestRegisters {
    /// The register numbered as in ModRM/exit-qualification encodings (0 = RAX, 1 = RCX,
    /// 2 = RDX, 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8-15 = R8-R15). `None` for RSP.
    pub fn value(&self, number: u8) -> Option<u64> {
        let mut copy = *self;
        copy.by_number(number).map(|r| *r)
    }

    /// The register numbered as in encodings, for writing (see [`GuestRegisters::value`]).
    pub fn by_number(&mut self, number: u8) -> Option<&mut u64> {
        Some(match number {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            15 => &mut self.r15,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_order_differs_from_push_order() {
        let mut regs = GuestRegisters {
            rcx: 1,
            rbx: 3,
            ..Default::default()
        };
        assert_eq!(*regs.by_number(1).unwrap(), 1);
        assert_eq!(*regs.by_number(3).unwrap(), 3);
        assert!(regs.by_number(GPR_RSP).is_none());
        assert!(regs.by_number(16).is_none());
    }
}
