//! Control fitting against the capability MSRs of eight Bochs CPU models, of nested KVM with
//! `-cpu host` on Skylake, and of nested KVM under nine QEMU named models (Nehalem to Icelake-Server)
//! (tests/vmx-caps).

use super::caps::{ept_cap, VmxCapabilities};
use super::controls::{ControlField, Controls, FitError, Problem};
use super::msr::MsrSource;
use std::collections::HashMap;
use x86::vmx::vmcs::control::{PrimaryControls, SecondaryControls};

/// The eight Bochs models, then nested KVM as derived from source (`kvm_fixture_tests`): with
/// `-cpu host` on Skylake, and under QEMU 7.2's named models (each file says how it was derived).
pub(super) const FIXTURES: [(&str, &str); 18] = [
    (
        "broadwell_ult",
        include_str!("../../tests/vmx-caps/broadwell_ult.txt"),
    ),
    (
        "corei3_cnl",
        include_str!("../../tests/vmx-caps/corei3_cnl.txt"),
    ),
    (
        "haswell",
        include_str!("../../tests/vmx-caps/corei7_haswell_4770.txt"),
    ),
    (
        "icelake_u",
        include_str!("../../tests/vmx-caps/corei7_icelake_u.txt"),
    ),
    (
        "ivy_bridge",
        include_str!("../../tests/vmx-caps/corei7_ivy_bridge_3770k.txt"),
    ),
    (
        "sandy_bridge",
        include_str!("../../tests/vmx-caps/corei7_sandy_bridge_2600k.txt"),
    ),
    (
        "skylake_x",
        include_str!("../../tests/vmx-caps/corei7_skylake_x.txt"),
    ),
    (
        "tigerlake",
        include_str!("../../tests/vmx-caps/tigerlake.txt"),
    ),
    (
        "nested_kvm_skylake",
        include_str!("../../tests/vmx-caps/nested_kvm_skylake.txt"),
    ),
    (
        "qemu_nehalem",
        include_str!("../../tests/vmx-caps/qemu_nehalem.txt"),
    ),
    (
        "qemu_westmere",
        include_str!("../../tests/vmx-caps/qemu_westmere.txt"),
    ),
    (
        "qemu_sandybridge",
        include_str!("../../tests/vmx-caps/qemu_sandybridge.txt"),
    ),
    (
        "qemu_ivybridge",
        include_str!("../../tests/vmx-caps/qemu_ivybridge.txt"),
    ),
    (
        "qemu_haswell",
        include_str!("../../tests/vmx-caps/qemu_haswell.txt"),
    ),
    (
        "qemu_broadwell",
        include_str!("../../tests/vmx-caps/qemu_broadwell.txt"),
    ),
    (
        "qemu_skylake_client",
        include_str!("../../tests/vmx-caps/qemu_skylake_client.txt"),
    ),
    (
        "qemu_cascadelake_server",
        include_str!("../../tests/vmx-caps/qemu_cascadelake_server.txt"),
    ),
    (
        "qemu_icelake_server",
        include_str!("../../tests/vmx-caps/qemu_icelake_server.txt"),
    ),
];

/// MSR values parsed from a fixture ("msr 0x480 = 0x..."; "#GP" lines are absent MSRs).
pub(super) struct Fixture(pub(super) HashMap<u32, u64>);

impl Fixture {
    pub(super) fn parse(text: &str) -> Self {
        let mut msrs = HashMap::new();
        for line in text.lines().filter(|l| l.starts_with("msr ")) {
            let (name, value) = line[4..].split_once(" = ").unwrap();
            let msr = u32::from_str_radix(name.trim_start_matches("0x"), 16).unwrap();
            if let Some(hex) = value.strip_prefix("0x") {
                msrs.insert(msr, u64::from_str_radix(hex, 16).unwrap());
            }
        }
        Self(msrs)
    }
}

impl MsrSource for Fixture {
    fn read(&self, msr: u32) -> Option<u64> {
        self.0.get(&msr).copied()
    }
}

fn caps(name: &str) -> VmxCapabilities {
    let text = FIXTURES.iter().find(|(n, _)| *n == name).unwrap().1;
    VmxCapabilities::read(&Fixture::parse(text)).unwrap()
}

#[test]
fn every_model_fits_rampart_controls() {
    for (name, text) in FIXTURES {
        let caps = VmxCapabilities::read(&Fixture::parse(text)).unwrap();
        let c = Controls::fit(&caps).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every fitted value honours allowed-0 and allowed-1.
        for (value, cap) in [
            (c.pinbased, caps.pinbased),
            (c.primary, caps.procbased),
            (c.secondary, caps.procbased2),
            (c.exit, caps.exit),
            (c.entry, caps.entry),
        ] {
            assert_eq!(
                value & cap as u32,
                cap as u32,
                "{name}: allowed-0 bit cleared"
            );
            assert_eq!(
                value & !((cap >> 32) as u32),
                0,
                "{name}: bit set that is not allowed-1"
            );
        }
        assert!(c.has_secondary(SecondaryControls::ENABLE_EPT), "{name}");
        let no_exit = PrimaryControls::HLT_EXITING
            | PrimaryControls::CR3_LOAD_EXITING
            | PrimaryControls::CR3_STORE_EXITING;
        assert_eq!(
            c.primary & no_exit.bits(),
            0,
            "{name}: HLT/CR3 must not exit"
        );
    }
}

#[test]
fn true_controls_are_used_when_basic_bit_55_is_set() {
    let c = caps("skylake_x");
    assert!(c.has_true_controls());
    // TRUE_PROCBASED (0x48e) clears the default-1 CR3-load/store exiting bits of 0x482.
    assert_eq!(c.procbased, 0xf7f9_fffe_0400_6172);
}

#[test]
fn without_true_controls_cr3_exiting_is_forced_and_reported() {
    let mut fixture = Fixture::parse(FIXTURES[6].1);
    fixture.0.insert(0x480, fixture.0[&0x480] & !(1 << 55));
    let caps = VmxCapabilities::read(&fixture).unwrap();
    let err = Controls::fit(&caps).unwrap_err();
    assert!(
        matches!(
            err,
            FitError {
                problem: Problem::ForcedOn,
                field: ControlField::Primary,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn models_differ_in_ept_page_sizes() {
    assert!(!caps("sandy_bridge").ept_has(ept_cap::PAGE_1G));
    assert!(caps("tigerlake").ept_has(ept_cap::PAGE_1G));
    for (name, _) in FIXTURES {
        assert!(caps(name).ept_has(ept_cap::PAGE_2M), "{name}");
        assert!(caps(name).ept_has(ept_cap::MEMORY_TYPE_WB), "{name}");
    }
}

#[test]
fn missing_secondary_msr_is_an_error_not_a_fault() {
    let mut fixture = Fixture::parse(FIXTURES[7].1);
    fixture.0.remove(&0x48b);
    assert!(VmxCapabilities::read(&fixture).is_err());
}

#[test]
fn cr_fixed_bits_force_vmxe_and_ne() {
    let c = caps("tigerlake");
    const CR4_VMXE: u64 = 1 << 13;
    const CR0_NE: u64 = 1 << 5;
    assert_ne!(c.fit_cr4(0) & CR4_VMXE, 0);
    assert_ne!(c.fit_cr0(0x8000_0001, false) & CR0_NE, 0);
    // Without unrestricted guest, PE and PG stay forced on.
    assert_eq!(c.fit_cr0(0, false) & 0x8000_0001, 0x8000_0001);
    assert_eq!(c.fit_cr0(0, true) & 0x8000_0001, 0);
}

#[test]
fn summary_names_the_features() {
    let s = format!("{}", caps("sandy_bridge"));
    assert!(
        s.contains(" ept") && s.contains("-ept-1g") && s.contains(" vpid"),
        "{s}"
    );
    let s = format!("{}", caps("tigerlake"));
    assert!(s.contains(" ept-1g") && s.contains("-mbec"), "{s}");
    // No model has tertiary controls, so none has HLAT; the Bochs models have 4 CR3-target
    // values, nested KVM (with -cpu host or a QEMU named model) none: every checked CR3 load
    // exits there.
    for (name, _) in FIXTURES {
        let s = format!("{}", caps(name));
        let nested = name == "nested_kvm_skylake" || name.starts_with("qemu_");
        let targets = if nested { 0 } else { 4 };
        let wanted = format!(" cr3-targets {targets} ");
        assert!(s.contains(" -hlat") && s.contains(&wanted), "{name}: {s}");
    }
}

/// Mode-based execute control (secondary bit 22) is taken where the capability MSR offers it:
/// no Bochs model does (so program text stays R-X there); a CPU that does (tigerlake's
/// capabilities with bit 22 added to allowed-1, a stand-in for Kaby Lake and later, untested on
/// hardware) gets it, and program text then becomes user-mode execute only.
#[test]
fn mode_based_execute_is_used_where_offered() {
    let bit = SecondaryControls::MODE_BASED_EPT;
    for (name, text) in FIXTURES {
        let caps = VmxCapabilities::read(&Fixture::parse(text)).unwrap();
        assert!(!Controls::fit(&caps).unwrap().has_secondary(bit), "{name}");
    }
    let mut with_mbec = caps("tigerlake");
    with_mbec.procbased2 |= u64::from(bit.bits()) << 32;
    assert!(Controls::fit(&with_mbec).unwrap().has_secondary(bit));
}

/// A pre-Nehalem VT-x (Core 2 era): no TRUE capability MSRs, no secondary controls, so no EPT.
/// The refusal names EPT, not the CR3 exiting the CPU also forces on.
#[test]
fn a_cpu_without_ept_is_refused_by_name() {
    let mut fixture = Fixture::parse(FIXTURES[5].1);
    fixture.0.insert(0x480, fixture.0[&0x480] & !(1 << 55));
    let primary =
        fixture.0[&0x482] & !(u64::from(PrimaryControls::SECONDARY_CONTROLS.bits()) << 32);
    fixture.0.insert(0x482, primary);
    let caps = VmxCapabilities::read(&fixture).unwrap();
    assert_eq!(caps.procbased2, 0, "no secondary controls to read");
    let err = Controls::fit(&caps).unwrap_err();
    assert!(
        matches!(
            err,
            FitError {
                problem: Problem::Unsupported,
                field: ControlField::Primary,
                ..
            }
        ),
        "{err}"
    );
    let line = err.to_string();
    assert!(
        line.contains("(activate secondary controls) are required but not supported"),
        "{line}"
    );
    assert!(line.contains("has no EPT"), "{line}");
    // Secondary controls but no EPT among them (a nested hypervisor hiding it).
    let mut fixture = Fixture::parse(FIXTURES[5].1);
    let secondary = fixture.0[&0x48b] & !(u64::from(SecondaryControls::ENABLE_EPT.bits()) << 32);
    fixture.0.insert(0x48b, secondary);
    let err = Controls::fit(&VmxCapabilities::read(&fixture).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("(enable EPT) are required but not supported: this CPU's VT-x has no EPT"),
        "{err}"
    );
}

#[test]
fn a_forced_control_is_named() {
    let mut fixture = Fixture::parse(FIXTURES[6].1);
    fixture.0.insert(0x480, fixture.0[&0x480] & !(1 << 55));
    let err = Controls::fit(&VmxCapabilities::read(&fixture).unwrap()).unwrap_err();
    let line = err.to_string();
    assert!(line.contains("(CR3-load exiting, CR3-store exiting) must be 0 but the CPU forces them on: this CPU has no IA32_VMX_TRUE_* capability MSRs"), "{line}");
}

/// Under QEMU's named models nested KVM offers what each generation had: unrestricted guest from
/// Westmere, EPT accessed/dirty flags and VMCS shadowing from Haswell; never MBEC or HLAT. Every
/// one fits Rampart's controls (the other tests run all fixtures).
#[test]
fn qemu_named_models_offer_their_generation() {
    let models: [(&str, &[&str]); 9] = [
        (
            "qemu_nehalem",
            &["-unrestricted", "-ept-ad", "-vmcs-shadow"],
        ),
        (
            "qemu_westmere",
            &[" unrestricted", "-ept-ad", "-vmcs-shadow"],
        ),
        (
            "qemu_sandybridge",
            &[" unrestricted", "-ept-ad", "-vmcs-shadow"],
        ),
        (
            "qemu_ivybridge",
            &[" unrestricted", "-ept-ad", "-vmcs-shadow"],
        ),
        (
            "qemu_haswell",
            &[" unrestricted", " ept-ad", " vmcs-shadow"],
        ),
        (
            "qemu_broadwell",
            &[" unrestricted", " ept-ad", " vmcs-shadow"],
        ),
        (
            "qemu_skylake_client",
            &[" unrestricted", " ept-ad", " vmcs-shadow"],
        ),
        (
            "qemu_cascadelake_server",
            &[" unrestricted", " ept-ad", " vmcs-shadow"],
        ),
        (
            "qemu_icelake_server",
            &[" unrestricted", " ept-ad", " vmcs-shadow"],
        ),
    ];
    for (name, wanted) in models {
        let s = format!("{}", caps(name));
        for token in wanted.iter().chain(&[" ept", " vpid", "-mbec", "-hlat"]) {
            assert!(s.contains(token), "{name}: no `{token}` in {s}");
        }
        Controls::fit(&caps(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
