//! The VM-entry checker over the VMCS Rampart launches with on every capability fixture (the
//! 8 Bochs models and nested KVM), and over broken images: each must fail exactly the rule
//! it breaks.

use super::fields::CHECKED_FIELDS;
use super::*;
use crate::arch::descriptors::HostTables;
use crate::handoff::GuestEntry;
use crate::vmx::caps::VmxCapabilities;
use crate::vmx::controls::Controls;
use crate::vmx::fixture_tests::{Fixture, FIXTURES};
use crate::vmx::setup::{launch_image, HostCpu, HostSetup, Structures};
use x86::vmx::vmcs::{control, guest, host};

const PHYS_BITS: u32 = 39;

fn caps(text: &str) -> VmxCapabilities {
    VmxCapabilities::read(&Fixture::parse(text)).unwrap()
}

fn tigerlake() -> VmxCapabilities {
    caps(FIXTURES.iter().find(|(n, _)| *n == "tigerlake").unwrap().1)
}

/// The image the boot CPU would launch with on `caps` (host values as the hypervisor has them).
fn image(caps: &VmxCapabilities) -> VmcsImage {
    let controls = Controls::fit(caps).unwrap();
    let structures = Structures {
        eptp: 0x20_0000 | (3 << 3) | 6,
        msr_bitmap: 0x21_0000,
        io_bitmap_a: 0x22_0000,
        io_bitmap_b: 0x22_1000,
        vpid: 1,
    };
    let host = HostSetup {
        cr3: 0x30_0000,
        tables: HostTables {
            gdt_base: 0x31_0000,
            idt_base: 0x31_1000,
            tss_base: 0x31_2000,
            tss_selector: 0x18,
        },
        exit_stack_top: 0x40_0000,
        exit_entry: 0x50_1234,
        cpu_slot: 0,
    };
    // Host CR0/CR4 as the hypervisor runs: what VMXON required (the fixed bits) plus paging,
    // PAE and OSFXSR; EFER with LME, LMA, NXE; the power-on PAT.
    let cpu = HostCpu {
        cr0: caps.fit_cr0(0x8001_0033, false),
        cr4: caps.fit_cr4((1 << 5) | (1 << 9) | (1 << 13)),
        efer: (1 << 8) | (1 << 10) | (1 << 11),
        pat: 0x0007_0406_0007_0406,
    };
    let entry = GuestEntry {
        rip: 0xffff_ffff_8010_0000,
        rsp: 0xffff_ffff_8020_0000,
        boot_info: 0x1000,
        cr3: 0x60_0000,
        gdt_base: 0x61_0000,
        gdt_limit: 0x27,
        tss_base: 0x61_1000,
        tss_limit: 0x67,
    };
    launch_image(caps, &controls, &structures, &host, &cpu, &entry)
}

#[test]
fn the_launch_image_passes_on_every_fixture() {
    let mut ran = 0;
    for (name, text) in FIXTURES {
        let caps = caps(text);
        let report = check(&image(&caps), &caps, PHYS_BITS);
        assert!(report.passed(), "{name}: {:?}", report.failures());
        assert!(report.ran >= 60, "{name}: only {} checks", report.ran);
        ran = report.ran;
    }
    println!("{} fixtures x {ran} checks, 0 failures", FIXTURES.len());
}

/// One broken field per case: the field, its broken value, and the section and rule (prefix)
/// that must be the only failure.
const BROKEN_FIELDS: &[(u32, u64, &str, &str)] = &[
    (
        guest::CS_ACCESS_RIGHTS,
        0xa093,
        "27.3.1.2",
        "CS usable, type 9",
    ),
    (
        guest::TR_ACCESS_RIGHTS,
        0x89,
        "27.3.1.2",
        "TR usable, type 11",
    ),
    (guest::RFLAGS, 0, "27.3.1.4", "RFLAGS reserved bits"),
    (
        guest::RIP,
        0x0000_8000_0000_0000,
        "27.3.1.4",
        "RIP canonical",
    ),
    (
        guest::CR0,
        0x8001_0013,
        "27.3.1.1",
        "guest CR0 has the bits",
    ),
    (
        guest::IA32_EFER_FULL,
        1 << 11,
        "27.3.1.1",
        "guest IA32_EFER.LMA equals",
    ),
    (guest::LINK_PTR_FULL, 0, "27.3.1.5", "VMCS link pointer"),
    (
        guest::INTERRUPTIBILITY_STATE,
        0b11,
        "27.3.1.5",
        "interruptibility state",
    ),
    (
        guest::GDTR_BASE,
        0x1234_0000_0000_0000,
        "27.3.1.3",
        "GDTR and IDTR bases",
    ),
    (host::TR_SELECTOR, 0, "27.2.3", "host CS and TR selectors"),
    (
        host::CS_SELECTOR,
        0x0b,
        "27.2.3",
        "host selectors with RPL 0",
    ),
    (host::RIP, 0x0000_9000_0000_0000, "27.2.4", "a 64-bit host"),
    (
        host::IA32_PAT_FULL,
        0x0007_0406_0007_0402,
        "27.2.2",
        "host IA32_PAT",
    ),
    (
        control::EPTP_FULL,
        0x20_0000 | (3 << 3) | 1,
        "27.2.1.1",
        "EPTP memory type",
    ),
    (
        control::EPTP_FULL,
        0x20_0000 | (2 << 3) | 6,
        "27.2.1.1",
        "EPTP page-walk length",
    ),
    (control::VPID, 0, "27.2.1.1", "VPID not 0"),
    (control::CR3_TARGET_COUNT, 5, "27.2.1.1", "CR3-target count"),
    (
        control::MSR_BITMAPS_ADDR_FULL,
        0x21_0008,
        "27.2.1.1",
        "MSR-bitmap address",
    ),
    (
        control::VMENTRY_MSR_LOAD_COUNT,
        1,
        "27.2.1.3",
        "no VM-entry MSR-load area",
    ),
    (
        control::PINBASED_EXEC_CONTROLS,
        0,
        "27.2.1.1",
        "pin-based controls within",
    ),
];

#[test]
fn each_broken_field_fails_its_own_rule() {
    let caps = tigerlake();
    let cases = BROKEN_FIELDS;
    for &(field, value, section, rule) in cases {
        let mut broken = image(&caps);
        broken.set(field, value);
        let report = check(&broken, &caps, PHYS_BITS);
        let failures = report.failures();
        assert_eq!(failures.len(), 1, "{field:#x}={value:#x}: {failures:?}");
        assert_eq!(failures[0].section, section, "{field:#x}: {failures:?}");
        assert!(
            failures[0].rule.starts_with(rule),
            "{field:#x}: {failures:?}"
        );
    }
    println!("{} broken-VMCS cases, each named", cases.len());
}

/// The checks Bochs's own VM entry does not make (its `cpu/vmx.cc`, see the module doc): a VMCS
/// breaking one boots under Bochs and fails on a real CPU, so these cases are all that hold them.
#[test]
fn what_bochs_lets_through_is_caught() {
    let kvm = caps(FIXTURES.iter().find(|(n, _)| n.contains("kvm")).unwrap().1);
    let tigerlake = tigerlake();
    let cases: &[(&VmxCapabilities, u32, u64, &str, &str)] = &[
        // Bochs checks bits 63:32 of RIP only outside 64-bit mode.
        (
            &tigerlake,
            guest::RIP,
            0xffff_7fff_0000_0000,
            "27.3.1.4",
            "RIP canonical",
        ),
        // Shutdown (2): nested KVM's IA32_VMX_MISC lacks bit 7; Bochs takes any state it knows.
        (&kvm, guest::ACTIVITY_STATE, 2, "27.3.1.5", "activity state"),
        // UC paging structures: nested KVM's IA32_VMX_EPT_VPID_CAP lacks bit 8; Bochs takes UC or WB.
        (
            &kvm,
            control::EPTP_FULL,
            0x20_0000 | (3 << 3),
            "27.2.1.1",
            "EPTP memory type",
        ),
        // Entry to SMM (VM-entry control 10) outside SMM: Bochs panics instead of failing.
        (
            &tigerlake,
            control::VMENTRY_CONTROLS,
            1 << 10,
            "27.2.1.3",
            "entry to SMM",
        ),
    ];
    for &(caps, field, value, section, rule) in cases {
        let mut broken = image(caps);
        let value = match field {
            control::VMENTRY_CONTROLS => broken.get(field).unwrap_or(0) | value,
            _ => value,
        };
        broken.set(field, value);
        let report = check(&broken, caps, PHYS_BITS);
        let failures = report.failures();
        assert_eq!(failures.len(), 1, "{field:#x}={value:#x}: {failures:?}");
        assert_eq!(failures[0].section, section, "{field:#x}: {failures:?}");
        assert!(
            failures[0].rule.starts_with(rule),
            "{field:#x}: {failures:?}"
        );
    }
}

#[test]
fn failures_read_as_sdm_sections() {
    let caps = tigerlake();
    let mut broken = image(&caps);
    broken.set(guest::LINK_PTR_FULL, 0);
    broken.set(guest::RFLAGS, 0);
    let report = check(&broken, &caps, PHYS_BITS);
    let text = std::format!("{}", Failures(&report));
    assert!(
        text.starts_with("SDM 27.3.1.4: RFLAGS reserved bits"),
        "{text}"
    );
    assert!(
        text.contains("; SDM 27.3.1.5: VMCS link pointer all ones"),
        "{text}"
    );
}

#[test]
fn a_read_back_covers_every_launched_field() {
    for (name, text) in FIXTURES {
        let image = image(&caps(text));
        for (field, _) in image.fields() {
            assert!(
                CHECKED_FIELDS.contains(field),
                "{name}: field {field:#x} not read back"
            );
        }
        // What a read-back of only those fields sees passes as the image itself does.
        let mut read_back = VmcsImage::new();
        for &field in CHECKED_FIELDS {
            if let Some(value) = image.get(field) {
                read_back.set(field, value);
            }
        }
        assert!(check(&read_back, &caps(text), PHYS_BITS).passed(), "{name}");
    }
}
