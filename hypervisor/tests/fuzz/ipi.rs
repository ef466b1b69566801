//! ICR writes (`exits::ipi::decide`) and LVT writes (`lvt_allowed`): whatever the bits, no
//! INIT, SIPI, SMI or NMI (nor lowest-priority, logical, illegal-vector or foreign-destination
//! IPI) is ever forwarded, and an LVT entry is only written masked or with fixed delivery.

use proptest::prelude::*;
use rampart_hypervisor::internals::ipi::{decide, lvt_allowed, IpiDecision};

const DELIVERY_MODE_SHIFT: u32 = 8;
const DELIVERY_FIXED: u64 = 0;
const DESTINATION_LOGICAL: u64 = 1 << 11;
const SHORTHAND_SHIFT: u32 = 18;
const RESERVED: u64 = (1 << 13) | (0b11 << 16) | (0xfff << 20);
const LVT_MASKED: u64 = 1 << 16;

fn mode(value: u64) -> u64 {
    (value >> DELIVERY_MODE_SHIFT) & 0b111
}

/// ICR values: random, or built field by field so the later checks are reached.
fn icr() -> impl Strategy<Value = u64> {
    let built = (
        0u32..8,
        0u64..8,
        any::<u8>(),
        0u64..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(destination, mode, vector, shorthand, logical, reserved)| {
                let destination = if destination == 7 {
                    u32::MAX
                } else {
                    destination
                };
                (u64::from(destination) << 32)
                    | (mode << DELIVERY_MODE_SHIFT)
                    | u64::from(vector)
                    | (shorthand << SHORTHAND_SHIFT)
                    | if logical { DESTINATION_LOGICAL } else { 0 }
                    | if reserved { 1 << 13 } else { 0 }
            },
        );
    prop_oneof![3 => built, 1 => any::<u64>()]
}

proptest! {
    #![proptest_config(crate::config(1024))]

    #[test]
    fn only_fixed_ipis_to_own_cpus_are_forwarded(
        icr in icr(),
        cpus in proptest::collection::vec(0u32..6, 0..4),
    ) {
        let decision = decide(icr, cpus.iter().copied());
        if icr & RESERVED != 0 {
            prop_assert_eq!(decision, IpiDecision::Invalid);
        }
        if decision == IpiDecision::Forward {
            // In particular never INIT (101), SIPI (110), SMI (010) or NMI (100).
            prop_assert_eq!(mode(icr), DELIVERY_FIXED, "{:#x}", icr);
            prop_assert!(icr & 0xff >= 16, "illegal vector forwarded: {icr:#x}");
            prop_assert_eq!(icr & RESERVED, 0);
            let shorthand = (icr >> SHORTHAND_SHIFT) & 0b11;
            if shorthand == 0 {
                prop_assert_eq!(icr & DESTINATION_LOGICAL, 0);
                let destination = (icr >> 32) as u32;
                prop_assert!(destination == u32::MAX || cpus.contains(&destination));
            }
        }
    }

    #[test]
    fn lvt_entries_deliver_only_fixed_vectors(value in any::<u64>(), mode_bits in 0u64..8) {
        let value = (value & !(0b111 << DELIVERY_MODE_SHIFT)) | (mode_bits << DELIVERY_MODE_SHIFT);
        if lvt_allowed(value) {
            prop_assert!(value & LVT_MASKED != 0 || mode_bits == DELIVERY_FIXED);
        }
        prop_assert_eq!(lvt_allowed(value & !LVT_MASKED), mode_bits == DELIVERY_FIXED);
    }
}
