//! VM-exit instruction-information decoding for descriptor-table exits (SDM Vol. 3C 28.2.5,
//! Tables 28-10 "LIDT, LGDT, SIDT, SGDT" and 28-11 "LLDT, LTR, SLDT, STR").
#![forbid(unsafe_code)]

/// Which descriptor-table instruction exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableInstruction {
    Sgdt,
    Sidt,
    Lgdt,
    Lidt,
    Sldt,
    Str,
    Lldt,
    Ltr,
}

impl TableInstruction {
    /// Bits 29:28 identify the instruction; `tr_ldtr` is true for exit reason 47 (LDTR/TR).
    pub fn decode(info: u32, tr_ldtr: bool) -> Self {
        use TableInstruction::*;
        let identity = ((info >> 28) & 0b11) as usize;
        let instructions = if tr_ldtr {
            [Sldt, Str, Lldt, Ltr]
        } else {
            [Sgdt, Sidt, Lgdt, Lidt]
        };
        instructions[identity]
    }

    /// Loads change a descriptor-table register; stores only read one.
    pub fn is_load(self) -> bool {
        matches!(self, Self::Lgdt | Self::Lidt | Self::Lldt | Self::Ltr)
    }
}

/// Where the operand is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A general-purpose register (SLDT/STR/LLDT/LTR with a register operand), numbered as in
    /// instruction encodings.
    Register(u8),
    /// Memory: segment register number (0 = ES .. 5 = GS) and the effective-address parts.
    Memory(MemoryOperand),
}

/// The parts of a memory operand's effective address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOperand {
    pub segment: u8,
    pub base: Option<u8>,
    pub index: Option<u8>,
    /// 1, 2, 4 or 8.
    pub scale: u8,
    /// Address size in bytes: 2, 4 or 8.
    pub address_size: u8,
}

impl MemoryOperand {
    /// The effective address (before the segment base): base + index * scale + displacement,
    /// truncated to the address size. `register` reads a GPR by number.
    pub fn effective_address(&self, displacement: u64, register: impl Fn(u8) -> u64) -> u64 {
        let base = self.base.map_or(0, &register);
        let index = self.index.map_or(0, &register);
        let address = base
            .wrapping_add(index.wrapping_mul(u64::from(self.scale)))
            .wrapping_add(displacement);
        match self.address_size {
            2 => address & 0xffff,
            4 => address & 0xffff_ffff,
            _ => address,
        }
    }
}

/// Decodes the operand of a descriptor-table instruction.
pub fn decode_operand(info: u32, tr_ldtr: bool) -> Operand {
    const MEM_REG_REGISTER: u32 = 1 << 10;
    if tr_ldtr && info & MEM_REG_REGISTER != 0 {
        return Operand::Register(((info >> 3) & 0xf) as u8);
    }
    let field = |shift: u32, invalid_bit: u32| {
        (info & (1 << invalid_bit) == 0).then_some(((info >> shift) & 0xf) as u8)
    };
    Operand::Memory(MemoryOperand {
        segment: ((info >> 15) & 0b111) as u8,
        index: field(18, 22),
        base: field(23, 27),
        scale: 1 << (info & 0b11),
        address_size: match (info >> 7) & 0b111 {
            0 => 2,
            1 => 4,
            _ => 8,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lidt_with_base_register_and_displacement() {
        // LIDT [rax + 0x10]: identity 3, 64-bit addressing (2 << 7), DS (3 << 15), index
        // invalid (bit 22), base RAX (0 << 23).
        let info = (3 << 28) | (2 << 7) | (3 << 15) | (1 << 22);
        assert_eq!(
            TableInstruction::decode(info, false),
            TableInstruction::Lidt
        );
        assert!(TableInstruction::Lidt.is_load());
        let Operand::Memory(m) = decode_operand(info, false) else {
            panic!()
        };
        assert_eq!(
            (m.base, m.index, m.segment, m.address_size),
            (Some(0), None, 3, 8)
        );
        assert_eq!(
            m.effective_address(0x10, |r| if r == 0 { 0x1000 } else { 0 }),
            0x1010
        );
    }

    #[test]
    fn str_to_register() {
        // STR ecx: identity 1 on exit 47, register operand (bit 10), Reg1 = 1 (bits 6:3).
        let info = (1 << 28) | (1 << 10) | (1 << 3);
        assert_eq!(TableInstruction::decode(info, true), TableInstruction::Str);
        assert!(!TableInstruction::Str.is_load());
        assert_eq!(decode_operand(info, true), Operand::Register(1));
    }

    #[test]
    fn scaled_index_wraps_to_address_size() {
        let m = MemoryOperand {
            segment: 3,
            base: Some(3),
            index: Some(1),
            scale: 8,
            address_size: 4,
        };
        assert_eq!(
            m.effective_address(0, |r| if r == 3 { 0xffff_fff0 } else { 4 }),
            0x10
        );
    }
}
