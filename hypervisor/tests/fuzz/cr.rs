//! MOV to CR0/CR4 (`exits::cr_access`) and XSETBV (`exits::xsetbv`) validators: whatever the
//! value, a pinned bit is never cleared, the value the CPU gets respects the VMX fixed bits
//! (SDM Vol. 3D A.7, A.8) with paging, PAE and WP on, and XCR0 only takes values the CPU
//! itself would accept (SDM Vol. 2D "XSETBV"), so the hypervisor's own XSETBV cannot fault.

use proptest::prelude::*;
use rampart_hypervisor::internals::caps::VmxCapabilities;
use rampart_hypervisor::internals::cr_access::{clears_pinned, cr0_for_guest, cr4_for_guest};
use rampart_hypervisor::internals::pinned::{CR0_WP, CR4_PINNABLE};
use rampart_hypervisor::internals::xsetbv::valid_xcr0;

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_VMXE: u64 = 1 << 13;

/// Capability MSRs: the CR fixed values of real and Bochs CPUs, or random ones consistent
/// with the SDM (every FIXED0 bit also in FIXED1, PE/PG/NE and VMXE fixed to 1).
fn caps() -> impl Strategy<Value = VmxCapabilities> {
    let cr0 = prop_oneof![
        Just((0x8000_0021u64, 0xffff_ffffu64)),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| {
            let fixed0 = u64::from(a & b) | 0x8000_0021;
            (fixed0, u64::from(b) | fixed0 | CR0_WP)
        }),
    ];
    let cr4 = prop_oneof![
        Just((0x2000u64, 0x0037_2fffu64)),
        Just((0x2000, 0x0076_7fff)),
        any::<u32>().prop_map(|b| (CR4_VMXE, u64::from(b) | CR4_VMXE | CR4_PAE)),
    ];
    (cr0, cr4).prop_map(
        |((cr0_fixed0, cr0_fixed1), (cr4_fixed0, cr4_fixed1))| VmxCapabilities {
            basic: 0,
            pinbased: 0,
            procbased: 0,
            exit: 0,
            entry: 0,
            procbased2: 0,
            ept_vpid: 0,
            misc: 0,
            tertiary: 0,
            cr0_fixed0,
            cr0_fixed1,
            cr4_fixed0,
            cr4_fixed1,
        },
    )
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        any::<u32>().prop_map(u64::from),
        any::<u32>().prop_map(|v| u64::from(v) | CR0_PE | CR0_PG | CR0_WP),
        any::<u32>().prop_map(|v| u64::from(v) | CR4_PAE),
    ]
}

proptest! {
    #![proptest_config(crate::config(1024))]

    #[test]
    fn cr_writes_keep_pins_and_fixed_bits(caps in caps(), value in value(), pinned in any::<u64>()) {
        let pinned_cr4 = pinned & CR4_PINNABLE;
        // What the exit handler does: refuse a write clearing a pinned bit, then fit the rest.
        if clears_pinned(0, value, pinned_cr4) == 0 {
            prop_assert!(value & CR0_WP != 0);
            if let Some(cr0) = cr0_for_guest(&caps, value) {
                prop_assert_eq!(cr0 & caps.cr0_fixed0, caps.cr0_fixed0);
                prop_assert_eq!(cr0 & !caps.cr0_fixed1, 0);
                prop_assert_eq!(cr0 & (CR0_PE | CR0_PG | CR0_WP), CR0_PE | CR0_PG | CR0_WP);
                prop_assert_eq!(value >> 32, 0);
            }
        } else {
            prop_assert_eq!(value & CR0_WP, 0);
        }
        let cleared = clears_pinned(4, value, pinned_cr4);
        prop_assert_eq!(cleared, pinned_cr4 & !value);
        if cleared == 0 {
            if let Some(cr4) = cr4_for_guest(&caps, value) {
                prop_assert_eq!(cr4 & caps.cr4_fixed0, caps.cr4_fixed0);
                prop_assert_eq!(cr4 & !caps.cr4_fixed1, 0);
                prop_assert!(cr4 & CR4_PAE != 0);
                // Every bit the guest asked for (but VMXE, which it cannot see) is kept.
                prop_assert_eq!(cr4 & value & !CR4_VMXE, value & !CR4_VMXE);
                prop_assert_eq!(cr4 & pinned_cr4, pinned_cr4);
            }
        }
        prop_assert_eq!(clears_pinned(3, value, pinned), 0);
    }

    #[test]
    fn xcr0_only_takes_architectural_values(value in any::<u64>(), supported in any::<u64>(), low in 0u64..0x100) {
        for value in [value, low, low & supported] {
            if valid_xcr0(value, supported) {
                prop_assert_eq!(value & !supported, 0);
                prop_assert!(value & 1 != 0, "x87");
                prop_assert!(value & 0b100 == 0 || value & 0b010 != 0, "AVX without SSE");
                let avx512 = value & (0b111 << 5);
                prop_assert!(avx512 == 0 || (avx512 == 0b111 << 5 && value & 0b100 != 0));
                let mpx = value & 0b11000;
                prop_assert!(mpx == 0 || mpx == 0b11000);
            }
        }
    }
}
