//! WRMSR decisions (`exits::msr::decide`) and the MSR bitmap (`exits::msr_bitmap`): whatever
//! the MSR number and value, only vetted writes go through, EFER keeps its pinned bits, locked
//! MSRs stay locked, and only the allowlisted MSRs pass the bitmap without an exit.

use proptest::prelude::*;
use rampart_hv_abi::Rule;
use rampart_hypervisor::internals::msr::{decide, Decision, EMULATED, IA32_EFER, IA32_FMASK};
use rampart_hypervisor::internals::msr_bitmap::{build, exits, read_passes, write_passes, x2apic};
use std::sync::OnceLock;

const EFER_ALLOWED: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
const EFER_MUST: u64 = (1 << 8) | (1 << 10) | (1 << 11);

/// Writes that may pass without an exit, spelled out from hypervisor/DESIGN.md: per-thread bases,
/// and the x2APIC registers that can only deliver a fixed interrupt to this CPU.
fn write_allowlist(msr: u32) -> bool {
    use x2apic::*;
    (0xc000_0100..=0xc000_0103).contains(&msr)
        || [
            TPR,
            EOI,
            SVR,
            ESR,
            LVT_TIMER,
            TIMER_INITIAL,
            TIMER_DIVIDE,
            SELF_IPI,
        ]
        .contains(&msr)
}

fn msr_number() -> impl Strategy<Value = u32> {
    prop_oneof![
        proptest::sample::select(EMULATED.to_vec()),
        0u32..0x2000,
        0xc000_0000u32..0xc000_2000,
        0x800u32..0x840,
        any::<u32>(),
    ]
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..1 << 12),
        Just(0x0000_8000_0000_0000),
        Just(0xffff_8000_0000_0000),
        Just(0xffff_ffff_8000_1000),
        Just(1 << 32),
    ]
}

/// The bitmap as `build` fills it, built once.
fn built() -> &'static [u8; 4096] {
    static BITMAP: OnceLock<[u8; 4096]> = OnceLock::new();
    BITMAP.get_or_init(|| {
        let mut bitmap = [0u8; 4096];
        build(&mut bitmap);
        bitmap
    })
}

fn canonical(address: u64) -> bool {
    let upper = (address as i64) >> 47;
    upper == 0 || upper == -1
}

proptest! {
    #![proptest_config(crate::config(1024))]

    #[test]
    fn only_vetted_writes_pass(msr in msr_number(), value in value(), locked in any::<bool>()) {
        match decide(msr, value, locked) {
            Decision::Efer(efer) => {
                prop_assert_eq!(msr, IA32_EFER);
                prop_assert_eq!(efer & !EFER_ALLOWED, 0);
                prop_assert_eq!(efer & EFER_MUST, EFER_MUST);
            }
            Decision::Write => {
                prop_assert!(EMULATED.contains(&msr) && msr != IA32_EFER && !locked);
                if [0xc000_0082, 0xc000_0083, 0x175, 0x176].contains(&msr) {
                    prop_assert!(canonical(value));
                }
                if msr == IA32_FMASK {
                    prop_assert_eq!(value >> 32, 0);
                }
            }
            Decision::Invalid => {}
            Decision::Blocked(rule) => {
                let expected = if msr == IA32_EFER {
                    Rule::PinnedEfer
                } else if !EMULATED.contains(&msr) {
                    Rule::Msr
                } else {
                    Rule::LockedMsr
                };
                prop_assert_eq!(rule, expected);
            }
        }
        if !EMULATED.contains(&msr) {
            prop_assert_eq!(decide(msr, value, locked), Decision::Blocked(Rule::Msr));
        }
    }

    #[test]
    fn only_allowlisted_msrs_pass_the_bitmap(msr in msr_number()) {
        let bitmap = built();
        prop_assert_eq!(exits(bitmap, msr, true), !write_passes(msr));
        prop_assert_eq!(exits(bitmap, msr, false), !read_passes(msr));
        if !exits(bitmap, msr, true) {
            prop_assert!(write_allowlist(msr), "write to {msr:#x} passes");
        }
        // What `msr` and `ipi` vet never passes: the emulated MSRs, the ICR, LVTs with a
        // delivery mode, IA32_APIC_BASE.
        let vetted = EMULATED.contains(&msr)
            || [x2apic::ICR, 0x1b].contains(&msr)
            || rampart_hypervisor::internals::ipi::is_lvt_with_delivery_mode(msr);
        if vetted {
            prop_assert!(exits(bitmap, msr, true), "write to {msr:#x} must exit");
        }
    }
}

/// Every MSR number in both bitmap ranges, once: the bitmap and the predicates agree.
#[test]
fn bitmap_matches_the_predicates_everywhere() {
    let bitmap = built();
    for msr in (0..0x2000u32).chain(0xc000_0000..0xc000_2000) {
        assert_eq!(exits(bitmap, msr, true), !write_passes(msr), "{msr:#x}");
        assert_eq!(exits(bitmap, msr, false), !read_passes(msr), "{msr:#x}");
        assert!(!write_passes(msr) || write_allowlist(msr), "{msr:#x}");
    }
}
