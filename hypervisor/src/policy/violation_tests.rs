//! Host tests of `policy::violation`: rules, nesting, ECAM, mode-based execute qualifications,
//! from the qualification values the CPU reports.

use super::*;
use crate::devices::ecam::Windows;
use crate::handoff::PhysRange;
use crate::policy::layout::{KernelSegment, MAX_SEGMENTS};
use crate::policy::SegmentKind;
use crate::vmx::qualification::EptViolation;

/// The rule for an exit with qualification `q` at `gpa`, recorded as `exits::policy` does.
fn classify(
    layout: &ProtectedLayout,
    ecam: &Windows,
    gpa: u64,
    q: EptViolation,
    locked_table: bool,
) -> Rule {
    let access = if q.fetch() {
        Access::EXECUTE
    } else if q.write() {
        Access::WRITE
    } else {
        Access::READ
    };
    let violation = Violation {
        gpa,
        access,
        allowed: q.allowed_rights(layout.mode_based_execute()),
        device_rule: q
            .write()
            .then(|| crate::devices::write_rule(ecam, gpa))
            .flatten(),
        locked_table,
        protected_frame: false,
        vectoring: 0,
    };
    verdict(layout, &violation).rule
}

fn layout() -> ProtectedLayout {
    let mut segments = [None; MAX_SEGMENTS];
    segments[0] = Some(KernelSegment {
        range: PhysRange::new(0x1000, 0x1000),
        vaddr: 0,
        kind: SegmentKind::Text,
    });
    segments[1] = Some(KernelSegment {
        range: PhysRange::new(0x2000, 0x1000),
        vaddr: 0,
        kind: SegmentKind::ReadOnly,
    });
    ProtectedLayout {
        segments,
        initrd: PhysRange::new(0x8000, 0x1000),
        hypervisor: [
            PhysRange::new(0x10000, 0x1000),
            PhysRange::new(0x20000, 0x1000),
            PhysRange::new(0, 0),
        ],
        text_rights: Permissions::EXECUTE_ONLY,
        program_text_rights: Permissions::READ_EXECUTE,
    }
}

// Qualification: bits 2:0 access (read, write, fetch), bits 5:3 the page's rights.
const WRITE_TO_RX: u64 = 0b101_010;
const WRITE_TO_R: u64 = 0b001_010;
const FETCH_FROM_RW: u64 = 0b011_100;
const FETCH_FROM_R: u64 = 0b001_100;
const READ_ABSENT: u64 = 0b000_001;
const READ_OF_EXECUTE_ONLY: u64 = 0b100_001;

#[test]
fn blocked_event_delivery_escalates_like_the_cpu() {
    const VALID_HW: u64 = (1 << 31) | (3 << 8);
    assert_eq!(nested(0), Nested::No);
    assert_eq!(nested(VALID_HW | 20), Nested::DoubleFault, "#VE during #VE");
    assert_eq!(nested(VALID_HW | 14), Nested::DoubleFault);
    assert_eq!(nested(VALID_HW | 8), Nested::TripleFault);
    assert_eq!(nested(VALID_HW | 3), Nested::No, "benign #BP");
    assert_eq!(
        nested((1 << 31) | 0x30),
        Nested::No,
        "an external interrupt"
    );
}

#[test]
fn violations_name_the_rule() {
    let l = layout();
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x1008,
            EptViolation(WRITE_TO_RX),
            false
        ),
        Rule::KernelText
    );
    assert_eq!(
        classify(&l, &Windows::new(), 0x2008, EptViolation(WRITE_TO_R), false),
        Rule::KernelReadOnly
    );
    assert_eq!(
        classify(&l, &Windows::new(), 0x8000, EptViolation(WRITE_TO_R), false),
        Rule::MeasuredModule
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x5000,
            EptViolation(WRITE_TO_RX),
            false
        ),
        Rule::ExecutableNotWritable
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x5000,
            EptViolation(FETCH_FROM_RW),
            false
        ),
        Rule::NotExecutable
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x10008,
            EptViolation(READ_ABSENT),
            false
        ),
        Rule::HypervisorMemory
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x9_0000_0000,
            EptViolation(READ_ABSENT),
            false
        ),
        Rule::ProtectedRange
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x1008,
            EptViolation(READ_OF_EXECUTE_ONLY),
            false
        ),
        Rule::KernelText
    );
    assert_eq!(
        classify(&l, &Windows::new(), 0x5008, EptViolation(WRITE_TO_R), true),
        Rule::LockedDescriptorTable
    );
}

/// With MBEC, qualification bit 6 is user-mode execute: a write to granted program text
/// (R and user-execute) is a W^X block, a supervisor fetch from it is not executable.
#[test]
fn mode_based_execute_qualifications() {
    let l = ProtectedLayout {
        program_text_rights: Permissions::READ_USER_EXECUTE,
        ..layout()
    };
    const WRITE_TO_R_UX: u64 = 0b100_1010;
    const FETCH_FROM_R_UX: u64 = 0b100_1100;
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x5000,
            EptViolation(WRITE_TO_R_UX),
            false
        ),
        Rule::ExecutableNotWritable
    );
    assert_eq!(
        classify(
            &l,
            &Windows::new(),
            0x5000,
            EptViolation(FETCH_FROM_R_UX),
            false
        ),
        Rule::NotExecutable
    );
    // Without MBEC bit 6 is undefined and ignored.
    assert_eq!(
        classify(
            &layout(),
            &Windows::new(),
            0x5000,
            EptViolation(WRITE_TO_R_UX),
            false
        ),
        Rule::ProtectedRange
    );
    let user_fetch = EptViolation(FETCH_FROM_R_UX | (1 << 7) | (1 << 8) | (1 << 9));
    assert!(user_fetch.user_mode_address());
    assert!(!EptViolation(FETCH_FROM_R_UX | (1 << 9)).user_mode_address());
    assert_eq!(
        user_fetch.allowed_rights(true),
        Permissions::READ_USER_EXECUTE
    );
}

#[test]
fn ecam_writes_are_configuration_writes() {
    let l = layout();
    let mut ecam = Windows::new();
    ecam.push(PhysRange::new(0xb000_0000, 256 << 20)).unwrap();
    // Bus 0, device 2: the Command register, then BAR0.
    assert_eq!(
        classify(&l, &ecam, 0xb001_0004, EptViolation(WRITE_TO_R), false),
        Rule::Dma
    );
    assert_eq!(
        classify(&l, &ecam, 0xb001_0010, EptViolation(WRITE_TO_R), false),
        Rule::DeviceBar
    );
    // A fetch from the window is no configuration write.
    assert_eq!(
        classify(&l, &ecam, 0xb001_0010, EptViolation(FETCH_FROM_R), false),
        Rule::NotExecutable
    );
    // The hypervisor's ranges come first even if a bad MCFG overlapped them.
    ecam.push(PhysRange::new(0x10000, 0x1000)).unwrap();
    assert_eq!(
        classify(&l, &ecam, 0x10004, EptViolation(WRITE_TO_R), false),
        Rule::HypervisorMemory
    );
}

#[test]
fn a_write_to_a_locked_page_table_is_the_page_table_rule() {
    let violation = Violation {
        gpa: 0x5008,
        access: Access::WRITE,
        allowed: Permissions::READ,
        device_rule: None,
        locked_table: false,
        protected_frame: true,
        vectoring: (1 << 31) | (3 << 8) | 8,
    };
    let verdict = verdict(&layout(), &violation);
    assert_eq!(verdict.rule, Rule::PageTable);
    assert_eq!(verdict.nested, Nested::TripleFault);
    let read = Violation {
        access: Access::READ,
        ..violation
    };
    assert_eq!(super::verdict(&layout(), &read).rule, Rule::ProtectedRange);
}
