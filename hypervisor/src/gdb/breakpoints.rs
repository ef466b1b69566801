//! Breakpoint bookkeeping: software breakpoints (INT3 bytes and the bytes they replaced) and
//! the four hardware slots with their DR7 encoding (SDM Vol. 3B 19.2 "Debug Registers",
//! Figure 19-1: L0-L3 in bits 0/2/4/6, LE bit 8, bit 10 reads as 1, R/W and LEN fields at
//! bits 16 + 4n and 18 + 4n).
#![forbid(unsafe_code)]

/// The INT3 opcode (SDM Vol. 2A "INT n/INTO/INT3/INT1").
pub const INT3: u8 = 0xcc;
/// Software breakpoints at once.
pub const MAX_SW_BREAKPOINTS: usize = 32;
/// DR0-DR3.
pub const HW_SLOTS: usize = 4;
/// DR7 with nothing enabled (bit 10 is reserved and set).
pub const DR7_DISABLED: u64 = 0x400;
const DR7_LOCAL_EXACT: u64 = 1 << 8;
const RW_EXECUTE: u64 = 0b00;
const RW_WRITE: u64 = 0b01;
const RW_READ_WRITE: u64 = 0b11;

/// One software breakpoint: its address and the original byte under the INT3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwBreakpoint {
    pub address: u64,
    pub original: u8,
}

/// The software breakpoints in guest memory.
#[derive(Debug)]
pub struct SwBreakpoints {
    entries: [Option<SwBreakpoint>; MAX_SW_BREAKPOINTS],
}

impl SwBreakpoints {
    pub const fn new() -> Self {
        Self {
            entries: [None; MAX_SW_BREAKPOINTS],
        }
    }

    pub fn contains(&self, address: u64) -> bool {
        self.entries.iter().flatten().any(|b| b.address == address)
    }

    /// Records a breakpoint; false if the table is full or it already exists.
    pub fn insert(&mut self, breakpoint: SwBreakpoint) -> bool {
        if self.contains(breakpoint.address) {
            return false;
        }
        match self.entries.iter_mut().find(|e| e.is_none()) {
            Some(slot) => {
                *slot = Some(breakpoint);
                true
            }
            None => false,
        }
    }

    /// Forgets the breakpoint at `address`, returning it (to restore its byte).
    pub fn remove(&mut self, address: u64) -> Option<SwBreakpoint> {
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.is_some_and(|b| b.address == address))?;
        slot.take()
    }

    /// Removes and returns any one breakpoint (to clear them all on detach).
    pub fn pop(&mut self) -> Option<SwBreakpoint> {
        self.entries.iter_mut().find_map(|e| e.take())
    }
}

impl Default for SwBreakpoints {
    fn default() -> Self {
        Self::new()
    }
}

/// What a hardware slot watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwKind {
    Execute,
    Write,
    /// x86 has no read-only data breakpoint: reads and writes both trigger it.
    ReadWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwSlot {
    pub address: u64,
    pub kind: HwKind,
    /// 1, 2, 4 or 8 bytes (1 for execute).
    pub len: u64,
}

/// DR0-DR3 as the debugger programmed them.
#[derive(Clone, Copy, Debug, Default)]
pub struct HwBreakpoints {
    pub slots: [Option<HwSlot>; HW_SLOTS],
}

/// LEN encoding (00 = 1, 01 = 2, 11 = 4, 10 = 8 bytes); `None` for other sizes.
fn len_bits(len: u64) -> Option<u64> {
    match len {
        1 => Some(0b00),
        2 => Some(0b01),
        4 => Some(0b11),
        8 => Some(0b10),
        _ => None,
    }
}

impl HwBreakpoints {
    /// Takes a free slot; `None` if all four are used, or the size or alignment is invalid.
    pub fn add(&mut self, slot: HwSlot) -> Option<usize> {
        let len = if slot.kind == HwKind::Execute {
            1
        } else {
            slot.len
        };
        len_bits(len)?;
        if !slot.address.is_multiple_of(len) {
            return None;
        }
        let index = self.slots.iter().position(Option::is_none)?;
        self.slots[index] = Some(HwSlot { len, ..slot });
        Some(index)
    }

    /// Frees the slot holding exactly this breakpoint.
    pub fn remove(&mut self, address: u64, kind: HwKind) -> bool {
        match self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|s| s.address == address && s.kind == kind))
        {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    /// The DR7 value enabling exactly the used slots (locally, with exact data matching).
    pub fn dr7(&self) -> u64 {
        let mut dr7 = DR7_DISABLED;
        for (n, slot) in self.slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            let rw = match slot.kind {
                HwKind::Execute => RW_EXECUTE,
                HwKind::Write => RW_WRITE,
                HwKind::ReadWrite => RW_READ_WRITE,
            };
            let len = len_bits(slot.len).unwrap_or(0);
            dr7 |= (1 << (2 * n)) | DR7_LOCAL_EXACT;
            dr7 |= (rw << (16 + 4 * n)) | (len << (18 + 4 * n));
        }
        dr7
    }

    /// The first used slot whose B0-B3 bit is set in `dr6_bits` (exit qualification bits 3:0
    /// of a #DB exit, SDM Vol. 3C 28.2.1 Table 28-1).
    pub fn hit(&self, dr6_bits: u64) -> Option<HwSlot> {
        (0..HW_SLOTS)
            .filter(|n| dr6_bits & (1 << n) != 0)
            .find_map(|n| self.slots[n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_table_keeps_original_bytes() {
        let mut t = SwBreakpoints::new();
        assert!(t.insert(SwBreakpoint {
            address: 0x1000,
            original: 0x55
        }));
        assert!(!t.insert(SwBreakpoint {
            address: 0x1000,
            original: 0xcc
        }));
        assert!(t.contains(0x1000));
        assert_eq!(t.remove(0x1000).map(|b| b.original), Some(0x55));
        assert_eq!(t.remove(0x1000), None);
        for a in 0..MAX_SW_BREAKPOINTS as u64 {
            assert!(t.insert(SwBreakpoint {
                address: a,
                original: 0
            }));
        }
        assert!(!t.insert(SwBreakpoint {
            address: 99,
            original: 0
        }));
        assert!(t.pop().is_some());
    }

    #[test]
    fn dr7_encodes_execute_and_write_slots() {
        let mut hw = HwBreakpoints::default();
        assert_eq!(hw.dr7(), 0x400);
        let exec = HwSlot {
            address: 0x40_1000,
            kind: HwKind::Execute,
            len: 0,
        };
        assert_eq!(hw.add(exec), Some(0));
        let watch = HwSlot {
            address: 0x40_5bf0,
            kind: HwKind::Write,
            len: 8,
        };
        assert_eq!(hw.add(watch), Some(1));
        // L0, L1, LE, bit 10; slot 1: R/W = 01 at bits 21:20, LEN = 10 at bits 23:22.
        assert_eq!(
            hw.dr7(),
            0x400 | 0b101 | 0x100 | (0b01 << 20) | (0b10 << 22)
        );
        assert_eq!(hw.hit(0b10), Some(HwSlot { len: 8, ..watch }));
        assert_eq!(hw.hit(0b1000), None);
        assert!(hw.remove(0x40_1000, HwKind::Execute));
        assert!(!hw.remove(0x40_1000, HwKind::Execute));
        assert_eq!(hw.dr7() & 0b11, 0);
    }

    #[test]
    fn bad_sizes_alignment_and_a_fifth_slot_are_refused() {
        let mut hw = HwBreakpoints::default();
        let w = |address, len| HwSlot {
            address,
            kind: HwKind::ReadWrite,
            len,
        };
        assert_eq!(hw.add(w(0x1000, 3)), None);
        assert_eq!(hw.add(w(0x1004, 8)), None);
        for n in 0..4 {
            assert_eq!(hw.add(w(0x1000 + 8 * n, 8)), Some(n as usize));
        }
        assert_eq!(hw.add(w(0x2000, 4)), None);
    }
}
