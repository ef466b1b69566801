//! What the page-table attacks forge (pure): an IDT gate pointing at another handler, the byte
//! of a page an attack may change without touching what other CPUs use meanwhile, and a page
//! entry pointing at another frame with the same rights.

use crate::mm::page_table::{self, PAGE_SIZE};

/// Bits 15:0 and 63:48 of a 64-bit gate's low quadword hold offset bits 15:0 and 31:16; the
/// high quadword's bits 31:0 hold offset bits 63:32 (SDM Vol. 3A 6.14.1, Figure 6-8
/// "64-Bit IDT Gate Descriptors").
const OFFSET_LOW_MASK: u64 = 0xffff;
const OFFSET_MIDDLE_SHIFT: u32 = 48;
const OFFSET_HIGH_MASK: u64 = 0xffff_ffff;

/// The handler address of a 64-bit gate.
pub fn gate_handler(gate: [u64; 2]) -> u64 {
    (gate[0] & OFFSET_LOW_MASK)
        | ((gate[0] >> OFFSET_MIDDLE_SHIFT) << 16)
        | ((gate[1] & OFFSET_HIGH_MASK) << 32)
}

/// `gate` with its handler replaced by `handler` (selector, IST, type, DPL kept).
pub fn gate_with_handler(gate: [u64; 2], handler: u64) -> [u64; 2] {
    let kept_low = gate[0] & !(OFFSET_LOW_MASK | (OFFSET_LOW_MASK << OFFSET_MIDDLE_SHIFT));
    let low = kept_low
        | (handler & OFFSET_LOW_MASK)
        | (((handler >> 16) & OFFSET_LOW_MASK) << OFFSET_MIDDLE_SHIFT);
    let high = (gate[1] & !OFFSET_HIGH_MASK) | (handler >> 32);
    [low, high]
}

/// The offset in its page farthest from `live` (an address other CPUs may run or read
/// meanwhile): the first or the last byte.
pub fn far_offset(live: u64) -> usize {
    match live % PAGE_SIZE < PAGE_SIZE / 2 {
        true => PAGE_SIZE as usize - 1,
        false => 0,
    }
}

/// `entry` pointing at `frame` instead, with its rights and other bits kept.
pub fn repoint(entry: u64, frame: u64) -> u64 {
    page_table::entry(frame, entry & !page_table::ADDRESS_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_round_trip_and_keep_their_attributes() {
        let handler = 0xffff_ffff_8012_3456;
        // Selector 0x08, IST 0, type 0xE, P=1 (as `arch::idt` builds them).
        let gate = [
            (handler & 0xffff) | (0x08 << 16) | (0x8e << 40) | (((handler >> 16) & 0xffff) << 48),
            handler >> 32,
        ];
        assert_eq!(gate_handler(gate), handler);
        let forged = gate_with_handler(gate, 0xffff_ffff_8abc_def0);
        assert_eq!(gate_handler(forged), 0xffff_ffff_8abc_def0);
        let attributes = 0xffff_ffff_0000 & !(0xffff << 48);
        assert_eq!(forged[0] & attributes, gate[0] & attributes);
        assert_eq!(gate_with_handler(forged, handler), gate);
    }

    #[test]
    fn the_changed_byte_is_away_from_the_live_one() {
        assert_eq!(far_offset(0xffff_ffff_8000_1010), 4095);
        assert_eq!(far_offset(0xffff_ffff_8000_1ff0), 0);
    }

    #[test]
    fn repointed_entries_keep_their_rights() {
        let entry = page_table::entry(0x1234_5000, page_table::PRESENT | page_table::NO_EXECUTE);
        let moved = repoint(entry | page_table::ACCESSED, 0x9000);
        assert_eq!(page_table::entry_address(moved), 0x9000);
        assert_eq!(
            moved & !page_table::ADDRESS_MASK,
            page_table::PRESENT | page_table::NO_EXECUTE | page_table::ACCESSED
        );
    }
}
