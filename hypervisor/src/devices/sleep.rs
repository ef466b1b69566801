//! ACPI sleep states (pure). A write that sets SLP_EN in a PM1 control register (ACPI 6.5
//! 4.8.3.2.1: SLP_TYPx bits 12:10, SLP_EN bit 13) or in the hardware-reduced sleep control
//! register (4.8.3.7: SLP_TYPx bits 4:2, SLP_EN bit 5) puts the platform to sleep. From S1-S4
//! it resumes through the firmware into the OS waking vector: guest-chosen code running
//! outside VMX, with no EPT, on a CPU the hypervisor no longer controls. The hypervisor cannot
//! resume into itself, so every write that sets SLP_EN is refused, whatever SLP_TYPx says (the
//! value for S5 is the DSDT's `\_S5` package, AML this hypervisor does not interpret). S5 and
//! reset end the hypervisor with the guest, which a triple fault can do anyway: the guest
//! stops the machine through the Shutdown hypercall, and resets through 0xCF9 or the FADT's
//! reset register as before.
#![forbid(unsafe_code)]

use super::ports::PortBlock;

/// Most sleep-control register blocks the hypervisor traps: PM1a and PM1b control, the sleep
/// control register, the chipset's own PM1 control.
pub const MAX_SLEEP_BLOCKS: usize = 4;
pub use crate::handoff::{PM1_CONTROL_LENGTH, SLEEP_CONTROL_LENGTH};
const PM1_SLEEP_ENABLE_BIT: u16 = 13;
const SLEEP_CONTROL_SLEEP_ENABLE_BIT: u16 = 5;

/// The trapped sleep-control blocks, found in the FADT and the chipset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SleepBlocks(heapless::Vec<PortBlock, MAX_SLEEP_BLOCKS>);

impl SleepBlocks {
    /// Adds a block (a duplicate is kept once); false if the table is full.
    pub fn add(&mut self, block: PortBlock) -> bool {
        block.0 == 0 || self.0.contains(&block) || self.0.push(block).is_ok()
    }

    pub fn blocks(&self) -> &[PortBlock] {
        &self.0
    }
}

/// True if an I/O write of `size` bytes of `value` at `port`, inside `block`, sets SLP_EN.
pub fn sets_sleep_enable(block: PortBlock, port: u16, size: u8, value: u32) -> bool {
    let (start, length) = block;
    let bit = if length == SLEEP_CONTROL_LENGTH {
        SLEEP_CONTROL_SLEEP_ENABLE_BIT
    } else {
        PM1_SLEEP_ENABLE_BIT
    };
    let Some(offset) = port.checked_sub(start).filter(|&o| o < length) else {
        return false;
    };
    // SLP_EN's position in the written value; none if the write starts past its byte.
    let Some(shift) = bit.checked_sub(offset * 8).map(u32::from) else {
        return false;
    };
    shift < u32::from(size) * 8 && value >> shift & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PM1A: PortBlock = (0xb004, PM1_CONTROL_LENGTH);
    const SLEEP_CONTROL: PortBlock = (0x500, SLEEP_CONTROL_LENGTH);

    #[test]
    fn slp_en_in_any_byte_lane_is_seen() {
        // S3 on PIIX4/QEMU: SLP_TYP 1, SLP_EN: 0x2400 as a word, 0x24 as the high byte.
        assert!(sets_sleep_enable(PM1A, 0xb004, 2, 0x2400));
        assert!(sets_sleep_enable(PM1A, 0xb005, 1, 0x24));
        assert!(
            sets_sleep_enable(PM1A, 0xb004, 2, 0x2000),
            "S0 type, still SLP_EN"
        );
        assert!(
            !sets_sleep_enable(PM1A, 0xb004, 2, 0x1401),
            "SLP_TYP without SLP_EN, SCI_EN"
        );
        assert!(
            !sets_sleep_enable(PM1A, 0xb004, 1, 0xff),
            "the low byte has no SLP_EN"
        );
        assert!(!sets_sleep_enable(PM1A, 0xb005, 1, 0x1c));
        assert!(sets_sleep_enable(SLEEP_CONTROL, 0x500, 1, 0x20 | 0x14));
        assert!(!sets_sleep_enable(SLEEP_CONTROL, 0x500, 1, 0x1c));
    }

    #[test]
    fn every_byte_lane_and_value_agrees_with_the_register_model() {
        for &(block, bit) in &[(PM1A, 13u32), (SLEEP_CONTROL, 5)] {
            for offset in 0..block.1 {
                for size in [1u8, 2] {
                    if offset + u16::from(size) > block.1 {
                        continue;
                    }
                    for value in 0..=u32::from(u16::MAX >> (16 - 8 * u32::from(size))) {
                        // The register value the write produces, in the block's bit numbering.
                        let register = value << (8 * u32::from(offset));
                        let want = register >> bit & 1 != 0;
                        assert_eq!(
                            sets_sleep_enable(block, block.0 + offset, size, value),
                            want,
                            "{block:x?} +{offset} size {size} value {value:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_table_keeps_each_block_once() {
        let mut blocks = SleepBlocks::default();
        assert!(blocks.add(PM1A) && blocks.add(PM1A) && blocks.add((0, 2)));
        assert_eq!(blocks.blocks(), &[PM1A]);
        for port in 1..=3 {
            assert!(blocks.add((port, 2)));
        }
        assert!(!blocks.add((9, 2)), "full");
    }
}
