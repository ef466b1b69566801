//! The PCI configuration filter (pure): what a guest write to a device's configuration space
//! may change. Without an IOMMU, a bus-mastering device writes any physical memory, kernel text
//! and hypervisor included, and MSI is such a write too; so bus mastering is refused on every
//! device (the hypervisor vets none), and a memory BAR may only move within the MMIO window
//! between the top of RAM below 4 GiB and the IOAPIC/LAPIC range, never over RAM or the
//! hypervisor, and I/O BARs do not move. Reads are not filtered.
#![forbid(unsafe_code)]

/// Type-0 header registers (PCI Local Bus 3.0, 6.1).
pub const COMMAND: u8 = 0x04;
pub const HEADER_TYPE: u8 = 0x0e;
pub const FIRST_BAR: u8 = 0x10;
pub const LAST_BAR: u8 = 0x24;
pub const EXPANSION_ROM: u8 = 0x30;
/// A bridge's (type-1 header) expansion ROM BAR (PCI-to-PCI Bridge 1.2, 3.2).
pub const BRIDGE_EXPANSION_ROM: u8 = 0x38;
pub const BRIDGE_LAST_BAR: u8 = 0x14;
/// Command register bit 2: bus master enable.
pub const COMMAND_BUS_MASTER: u32 = 1 << 2;
/// BAR bit 0: I/O space; bits 2:1 = 10: 64-bit memory BAR.
pub const BAR_IO: u32 = 1 << 0;
pub const BAR_TYPE_MASK: u32 = 0b110;
pub const BAR_TYPE_64: u32 = 0b100;
const BAR_MEMORY_FLAGS: u32 = 0xf;
const ROM_FLAGS: u32 = 0x7ff;
/// Where the IOAPIC, HPET, LAPIC and firmware flash live: no BAR may reach into it.
pub const PLATFORM_RANGE_START: u64 = 0xfec0_0000;

/// One guest configuration write, already split by the data port: `offset` is the byte offset
/// in configuration space (register + data-port offset), `size` 1, 2 or 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigWrite {
    pub offset: u8,
    pub size: u8,
    pub value: u32,
}

impl ConfigWrite {
    /// True if the write covers any byte from `first` to `last_inclusive`.
    fn covers_any(&self, first: u8, last_inclusive: u8) -> bool {
        self.offset <= last_inclusive && self.offset.saturating_add(self.size) > first
    }
}

/// What the device is, as far as the filter needs (read from its configuration space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Header type 0 (a device, with six BARs) rather than a bridge.
    pub is_endpoint: bool,
    /// The current value of the BAR (or ROM BAR) the write targets, if it targets one.
    pub current_bar: u32,
    /// For the upper half of a 64-bit BAR: true.
    pub upper_half_of_64bit: bool,
    /// The BAR's size in bytes (from the hypervisor's own sizing), 0 if unimplemented.
    pub bar_size: u64,
    /// A chipset power-management function (`sweep`): its I/O base (0x40-0x43) stays put,
    /// or the PM1 control register would leave the trapped ports.
    pub power_management: bool,
}

/// A power-management function's I/O base register (PIIX4 PMBA, ICH9 PMBASE).
const POWER_MANAGEMENT_BASE: u8 = 0x40;

/// Why a write was refused or trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The write would enable bus mastering: the bit is cleared, the rest written.
    BusMaster,
    /// A BAR write that is not a full aligned dword.
    PartialBar,
    /// A memory BAR (or ROM BAR) moved over RAM, the hypervisor or the platform range.
    BarOutsideMmioWindow { base: u64, size: u64 },
    /// A 64-bit BAR moved above 4 GiB (the filter keeps BARs in the low window).
    BarAbove4G,
    /// An I/O BAR moved (they stay where the firmware put them).
    IoBarMoved,
}

/// The filter's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward(ConfigWrite),
    /// Forward this (trimmed) write, and audit the refusal.
    Trimmed(ConfigWrite, Refusal),
    Refuse(Refusal),
}

/// Decides a guest configuration write. `mmio_window` is `[start, end)` where memory BARs may
/// lie: from the top of RAM below 4 GiB up to [`PLATFORM_RANGE_START`].
pub fn decide(write: ConfigWrite, facts: DeviceFacts, mmio_window: (u64, u64)) -> Verdict {
    if facts.power_management && write.covers_any(POWER_MANAGEMENT_BASE, POWER_MANAGEMENT_BASE + 3)
    {
        return Verdict::Refuse(Refusal::IoBarMoved);
    }
    if write.covers_any(COMMAND, COMMAND) {
        let shift = u32::from(COMMAND - write.offset) * 8;
        if write.value & (COMMAND_BUS_MASTER << shift) != 0 {
            let trimmed = ConfigWrite {
                value: write.value & !(COMMAND_BUS_MASTER << shift),
                ..write
            };
            return Verdict::Trimmed(trimmed, Refusal::BusMaster);
        }
        return Verdict::Forward(write);
    }
    // A bridge (type 1 header) has two BARs; its windows forward only downstream.
    let last_bar = if facts.is_endpoint {
        LAST_BAR
    } else {
        BRIDGE_LAST_BAR
    };
    let bar = write.covers_any(FIRST_BAR, last_bar + 3);
    let rom_bar = expansion_rom(facts.is_endpoint);
    let rom = write.covers_any(rom_bar, rom_bar + 3);
    if !(bar || rom) {
        return Verdict::Forward(write);
    }
    if write.size != 4 || !write.offset.is_multiple_of(4) {
        return Verdict::Refuse(Refusal::PartialBar);
    }
    // Sizing (all ones, PCI 3.0 6.2.5.1), leaving the BAR where it is, and keeping a 64-bit
    // BAR below 4 GiB (upper half 0) are always fine.
    let upper_half_zero = facts.upper_half_of_64bit && write.value == 0;
    if write.value == u32::MAX || write.value == facts.current_bar || upper_half_zero {
        return Verdict::Forward(write);
    }
    if facts.upper_half_of_64bit {
        return Verdict::Refuse(Refusal::BarAbove4G);
    }
    // I/O BARs stay where the firmware put them: a moved block of DMA registers would leave
    // the ports the hypervisor traps (`sweep`).
    if bar && facts.current_bar & BAR_IO != 0 {
        return Verdict::Refuse(Refusal::IoBarMoved);
    }
    let flags = if rom { ROM_FLAGS } else { BAR_MEMORY_FLAGS };
    let base = u64::from(write.value & !flags);
    let size = facts.bar_size.max(1);
    let (window_start, window_end) = mmio_window;
    let inside = base >= window_start && base.saturating_add(size) <= window_end;
    // A ROM BAR with its enable bit clear decodes nothing.
    let rom_disabled = rom && write.value & 1 == 0;
    if inside || rom_disabled {
        Verdict::Forward(write)
    } else {
        Verdict::Refuse(Refusal::BarOutsideMmioWindow { base, size })
    }
}

/// The expansion ROM BAR's register: a bridge has it too, further up (0x38).
pub const fn expansion_rom(is_endpoint: bool) -> u8 {
    if is_endpoint {
        EXPANSION_ROM
    } else {
        BRIDGE_EXPANSION_ROM
    }
}

/// The size of a memory BAR from the value read back after writing all ones (6.2.5.1).
pub fn bar_size(readback: u32, rom: bool) -> u64 {
    let flags = if rom { ROM_FLAGS } else { BAR_MEMORY_FLAGS };
    // The size is the lowest writable address bit: the two's complement of the mask (and 0
    // when no bit is writable, an unimplemented BAR).
    u64::from((readback & !flags).wrapping_neg())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: (u64, u64) = (0x2000_0000, PLATFORM_RANGE_START);

    fn device(current_bar: u32, bar_size: u64) -> DeviceFacts {
        DeviceFacts {
            is_endpoint: true,
            current_bar,
            upper_half_of_64bit: false,
            bar_size,
            power_management: false,
        }
    }

    fn write(offset: u8, size: u8, value: u32) -> ConfigWrite {
        ConfigWrite {
            offset,
            size,
            value,
        }
    }

    #[test]
    fn bus_mastering_is_stripped_whatever_the_access_size() {
        for w in [
            write(0x04, 4, 0x0000_0007),
            write(0x04, 2, 0x7),
            write(0x04, 1, 0x5),
        ] {
            match decide(w, device(0, 0), WINDOW) {
                Verdict::Trimmed(t, Refusal::BusMaster) => assert_eq!(t.value & 0x4, 0),
                other => panic!("{other:?}"),
            }
        }
        // The status half of the dword at 0x04 keeps its bits; memory/I-O enable pass.
        assert_eq!(
            decide(write(0x04, 4, 0x0010_0003), device(0, 0), WINDOW),
            Verdict::Forward(write(0x04, 4, 0x0010_0003))
        );
    }

    #[test]
    fn bars_stay_in_the_mmio_window() {
        let bar = 0xfebf_0000;
        // Sizing, restoring, and a move inside the window pass.
        for value in [u32::MAX, bar, 0x3000_0000] {
            assert!(matches!(
                decide(write(0x10, 4, value), device(bar, 0x1_0000), WINDOW),
                Verdict::Forward(_)
            ));
        }
        // Over RAM (kernel text at 64 MiB), straddling the platform range, partial writes.
        for (value, expected) in [
            (
                0x0400_0000,
                Refusal::BarOutsideMmioWindow {
                    base: 0x0400_0000,
                    size: 0x1_0000,
                },
            ),
            (
                0xfebf_8000,
                Refusal::BarOutsideMmioWindow {
                    base: 0xfebf_8000,
                    size: 0x1_0000,
                },
            ),
        ] {
            assert_eq!(
                decide(write(0x10, 4, value), device(bar, 0x1_0000), WINDOW),
                Verdict::Refuse(expected)
            );
        }
        assert_eq!(
            decide(write(0x12, 2, 0x0400), device(bar, 0x1_0000), WINDOW),
            Verdict::Refuse(Refusal::PartialBar)
        );
    }

    #[test]
    fn upper_halves_and_rom_and_io_bars() {
        let upper = DeviceFacts {
            upper_half_of_64bit: true,
            ..device(0, 0)
        };
        assert_eq!(
            decide(write(0x14, 4, 1), upper, WINDOW),
            Verdict::Refuse(Refusal::BarAbove4G)
        );
        assert!(matches!(
            decide(write(0x14, 4, 0), upper, WINDOW),
            Verdict::Forward(_)
        ));
        // ROM over RAM but disabled: decodes nothing; enabled: refused.
        assert!(matches!(
            decide(write(0x30, 4, 0x0400_0000), device(0, 0x1_0000), WINDOW),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            decide(write(0x30, 4, 0x0400_0001), device(0, 0x1_0000), WINDOW),
            Verdict::Refuse(_)
        ));
        // I/O BARs stay (sizing and restoring pass).
        assert_eq!(
            decide(write(0x20, 4, 0xc001), device(0xc041, 0x40), WINDOW),
            Verdict::Refuse(Refusal::IoBarMoved)
        );
        assert!(matches!(
            decide(write(0x20, 4, 0xc041), device(0xc041, 0x40), WINDOW),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn the_power_management_base_stays() {
        let pm = DeviceFacts {
            power_management: true,
            ..device(0, 0)
        };
        for (offset, size) in [(0x40, 4), (0x40, 1), (0x42, 2), (0x43, 1)] {
            assert_eq!(
                decide(write(offset, size, 0x1001), pm, WINDOW),
                Verdict::Refuse(Refusal::IoBarMoved),
                "{offset:#x}/{size}"
            );
        }
        assert!(matches!(
            decide(write(0x44, 1, 0x80), pm, WINDOW),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            decide(write(0x40, 4, 0x1001), device(0, 0), WINDOW),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn bridges_and_other_registers_pass() {
        let bridge = DeviceFacts {
            is_endpoint: false,
            ..device(0, 0)
        };
        assert!(matches!(
            decide(write(0x10, 4, 0x0400_0000), bridge, WINDOW),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            decide(write(0x18, 4, 0x0001_0100), bridge, WINDOW),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            decide(write(0x3c, 1, 0x0b), device(0, 0), WINDOW),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn sizes_from_readback() {
        assert_eq!(bar_size(0xffff_0000, false), 0x1_0000);
        assert_eq!(bar_size(0xffff_fff8, false), 0x10);
        assert_eq!(bar_size(0, false), 0);
        assert_eq!(bar_size(0xfffe_0001, true), 0x2_0000);
    }
}
