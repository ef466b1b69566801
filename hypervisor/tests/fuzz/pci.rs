//! The PCI configuration filter (`devices::pci::decide`): whatever the write and the device,
//! bus mastering is never forwarded set, and a forwarded write to a memory BAR or ROM BAR
//! leaves it inside the MMIO window, or is BAR sizing (all ones) or a restore of the current
//! value (PCI Local Bus 3.0, 6.1 and 6.2.5; PCI-to-PCI Bridge 1.2, 3.2).

use proptest::prelude::*;
use rampart_hypervisor::internals::pci::{
    decide, ConfigWrite, DeviceFacts, Refusal, Verdict, COMMAND_BUS_MASTER, PLATFORM_RANGE_START,
};

const COMMAND: u8 = 0x04;
/// Type-0 header: six BARs at 0x10-0x27, the expansion ROM BAR at 0x30.
const ENDPOINT_BARS: (u8, u8) = (0x10, 0x27);
const ENDPOINT_ROM: u8 = 0x30;
/// Type-1 header (bridge): two BARs at 0x10-0x17, the expansion ROM BAR at 0x38.
const BRIDGE_BARS: (u8, u8) = (0x10, 0x17);
const BRIDGE_ROM: u8 = 0x38;

fn covers(write: &ConfigWrite, first: u8, last: u8) -> bool {
    u16::from(write.offset) <= u16::from(last)
        && u16::from(write.offset) + u16::from(write.size) > u16::from(first)
}

/// The byte of the command register a forwarded write puts there, if it covers it.
fn command_byte(write: &ConfigWrite) -> Option<u8> {
    covers(write, COMMAND, COMMAND).then(|| (write.value >> ((COMMAND - write.offset) * 8)) as u8)
}

fn window() -> impl Strategy<Value = (u64, u64)> {
    (0x0800u64..0xfec0).prop_map(|mib64k| (mib64k << 16, PLATFORM_RANGE_START))
}

fn config_write() -> impl Strategy<Value = ConfigWrite> {
    let offset = prop_oneof![3 => 0u8..0x40, 1 => any::<u8>()];
    let value = prop_oneof![
        any::<u32>(),
        Just(u32::MAX),
        Just(0),
        (0u32..0x1_0000).prop_map(|v| v << 16),
        (0u32..0x1_0000).prop_map(|v| (v << 16) | 1),
    ];
    (offset, proptest::sample::select(vec![1u8, 2, 4]), value).prop_map(|(offset, size, value)| {
        ConfigWrite {
            offset,
            size,
            value,
        }
    })
}

fn facts() -> impl Strategy<Value = DeviceFacts> {
    let current = prop_oneof![any::<u32>(), Just(0xfebf_0000), Just(0xc001), Just(0)];
    let size = prop_oneof![Just(0u64), (4u32..32).prop_map(|s| 1u64 << s)];
    (any::<bool>(), current, any::<bool>(), size, any::<bool>()).prop_map(
        |(is_endpoint, current_bar, upper_half_of_64bit, bar_size, power_management)| DeviceFacts {
            is_endpoint,
            current_bar,
            upper_half_of_64bit,
            bar_size,
            power_management,
        },
    )
}

proptest! {
    #![proptest_config(crate::config(1024))]

    #[test]
    fn filter_invariants(write in config_write(), facts in facts(), window in window()) {
        let forwarded = match decide(write, facts, window) {
            Verdict::Forward(w) => w,
            Verdict::Trimmed(w, refusal) => {
                prop_assert_eq!(refusal, Refusal::BusMaster);
                // Only the bus-master bit is taken away.
                prop_assert_eq!((w.offset, w.size), (write.offset, write.size));
                prop_assert_eq!(w.value | (write.value ^ w.value), write.value);
                w
            }
            Verdict::Refuse(_) => return Ok(()),
        };
        // A power-management function's I/O base (0x40-0x43) never moves.
        prop_assert!(!(facts.power_management && covers(&forwarded, 0x40, 0x43)), "PM base write {:?}", forwarded);
        if let Some(command) = command_byte(&forwarded) {
            prop_assert_eq!(u32::from(command) & COMMAND_BUS_MASTER, 0, "bus master forwarded: {:?}", forwarded);
        }
        let (bars, rom) = if facts.is_endpoint {
            (ENDPOINT_BARS, ENDPOINT_ROM)
        } else {
            (BRIDGE_BARS, BRIDGE_ROM)
        };
        let is_bar = covers(&forwarded, bars.0, bars.1);
        let is_rom = covers(&forwarded, rom, rom + 3);
        if !(is_bar || is_rom) {
            return Ok(());
        }
        prop_assert!(forwarded.size == 4 && forwarded.offset % 4 == 0, "partial BAR write {:?}", forwarded);
        let value = forwarded.value;
        let sizing_or_restore = value == u32::MAX || value == facts.current_bar;
        let upper_half_zero = facts.upper_half_of_64bit && value == 0;
        let io_bar = is_bar && facts.current_bar & 1 != 0;
        let rom_disabled = is_rom && value & 1 == 0;
        let base = u64::from(value & if is_rom { !0x7ff } else { !0xf });
        let inside = base >= window.0 && base + facts.bar_size.max(1) <= window.1;
        prop_assert!(
            sizing_or_restore || upper_half_zero || io_bar || rom_disabled || (inside && !facts.upper_half_of_64bit),
            "BAR write {:?} to {:?} forwarded outside the window {:x?}", forwarded, facts, window
        );
    }
}

/// Found by `filter_invariants` (minimal input: a 2-byte write at 0x37 to a bridge): a
/// bridge's expansion ROM BAR at 0x38 was not filtered, so it could be enabled over RAM.
#[test]
fn bridge_rom_bar_stays_in_the_window() {
    let bridge = DeviceFacts {
        is_endpoint: false,
        current_bar: 0,
        upper_half_of_64bit: false,
        bar_size: 0x1_0000,
        power_management: false,
    };
    let window = (0x2000_0000, PLATFORM_RANGE_START);
    let over_ram = ConfigWrite {
        offset: 0x38,
        size: 4,
        value: 0x0400_0001,
    };
    assert!(matches!(
        decide(over_ram, bridge, window),
        Verdict::Refuse(_)
    ));
    let partial = ConfigWrite {
        offset: 0x37,
        size: 2,
        value: 0,
    };
    assert_eq!(
        decide(partial, bridge, window),
        Verdict::Refuse(Refusal::PartialBar)
    );
    let inside = ConfigWrite {
        offset: 0x38,
        size: 4,
        value: 0x3000_0001,
    };
    assert_eq!(decide(inside, bridge, window), Verdict::Forward(inside));
}
