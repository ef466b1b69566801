//! Hypercall decoding: the registers of a VMCALL (`rampart_hv_abi::Request::decode`) and
//! the hostile (gpa, length, rights) arguments of ProtectRange, GrantExecute and RevokeExecute
//! (`policy::operations`). Any register values: no panic, no overflow, all or nothing, W^X
//! on every page, hypervisor and measured pages untouched.

use proptest::prelude::*;
use rampart_hv_abi::{Hypercall, HypercallError, Registers, Request, Rule};
use rampart_hypervisor::internals::builder::EptError;
use rampart_hypervisor::internals::entry::{MemoryType, Permissions};
use rampart_hypervisor::internals::layout::{KernelSegment, SegmentKind, MAX_SEGMENTS};
use rampart_hypervisor::internals::operations::{self, Denial, PageTable, MAX_REQUEST_BYTES};
use rampart_hypervisor::internals::ProtectedLayout;
use rampart_hypervisor::PhysRange;
use std::collections::BTreeMap;

const PAGE: u64 = 4096;
/// Guest RAM in the fake: 64 pages.
const RAM_PAGES: u64 = 64;
const TEXT: PhysRange = PhysRange::new(4 * PAGE, 2 * PAGE);
const INITRD: PhysRange = PhysRange::new(8 * PAGE, 2 * PAGE);
const HV: PhysRange = PhysRange::new(16 * PAGE, 4 * PAGE);

/// Page-granular rights; pages outside RAM or in the hypervisor are absent.
#[derive(Clone, Debug, PartialEq)]
struct Pages(BTreeMap<u64, Permissions>);

impl PageTable for Pages {
    fn page(&mut self, gpa: u64) -> Option<(Permissions, Option<MemoryType>)> {
        self.0
            .get(&(gpa & !(PAGE - 1)))
            .map(|&rights| (rights, Some(MemoryType::WriteBack)))
    }

    fn set(&mut self, gpa: u64, length: u64, rights: Permissions) -> Result<(), EptError> {
        for page in (gpa..gpa + length).step_by(PAGE as usize) {
            assert!(
                !HV.overlaps(&PhysRange::new(page, PAGE)),
                "hypervisor page {page:#x} mapped"
            );
            self.0.insert(page, rights);
        }
        Ok(())
    }
}

fn layout() -> ProtectedLayout {
    let mut segments = [None; MAX_SEGMENTS];
    segments[0] = Some(KernelSegment {
        range: TEXT,
        vaddr: 0,
        kind: SegmentKind::Text,
    });
    ProtectedLayout {
        segments,
        initrd: INITRD,
        hypervisor: [HV, PhysRange::new(0, 0), PhysRange::new(0, 0)],
        text_rights: Permissions::READ_EXECUTE,
        program_text_rights: Permissions::READ_EXECUTE,
    }
}

fn initial() -> Pages {
    let mut pages = Pages(BTreeMap::new());
    for page in (0..RAM_PAGES * PAGE).step_by(PAGE as usize) {
        if !HV.overlaps(&PhysRange::new(page, PAGE)) {
            pages.0.insert(page, Permissions::READ_WRITE);
        }
    }
    operations::apply_initial(&mut pages, &layout()).unwrap();
    pages
}

fn register() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (0u64..RAM_PAGES + 4).prop_map(|p| p * PAGE),
        1 => 0u64..RAM_PAGES * PAGE,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - PAGE + 1),
        1 => Just(MAX_REQUEST_BYTES),
        1 => Just(MAX_REQUEST_BYTES + 1),
        1 => any::<u64>(),
    ]
}

fn rights(bits: u8) -> Permissions {
    Permissions::from_entry(u64::from(bits & 0b111))
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn numbers_decode_exactly(raw in prop_oneof![0u64..32, any::<u64>()]) {
        match Hypercall::try_from(raw).ok() {
            Some(call) => prop_assert_eq!(call as u64, raw),
            None => prop_assert!(raw > Hypercall::StartVcpu as u64),
        }
        if let Ok(error) = HypercallError::try_from(raw as i64) {
            prop_assert_eq!(error as i64, raw as i64);
            prop_assert!((raw as i64) < 0);
        }
        if let Ok(rule) = Rule::try_from(raw as u32) {
            prop_assert_eq!(rule as u32, raw as u32);
            prop_assert!(!rule.name().is_empty());
        }
    }

    #[test]
    fn requests_decode_once_and_encode_back(rax in prop_oneof![0u64..32, any::<u64>()], args in any::<[u64; 4]>()) {
        let registers = Registers { rax, rdi: args[0], rsi: args[1], rdx: args[2], r10: args[3] };
        match Request::decode(&registers) {
            Ok(request) => {
                prop_assert_eq!(request.hypercall() as u64, rax);
                let encoded = request.encode();
                prop_assert_eq!(Request::decode(&encoded), Ok(request));
                // Every argument register the request uses carries the caller's value.
                for (sent, back) in [(registers.rdi, encoded.rdi), (registers.rsi, encoded.rsi),
                                     (registers.rdx, encoded.rdx), (registers.r10, encoded.r10)] {
                    prop_assert!(back == sent || back == 0);
                }
            }
            Err(error) => {
                prop_assert_eq!(error, HypercallError::NotSupported);
                prop_assert!(Hypercall::try_from(rax).is_err());
            }
        }
    }

    #[test]
    fn hostile_policy_requests(
        requests in proptest::collection::vec((0u8..3, register(), register(), any::<u8>(), any::<bool>()), 1..12),
    ) {
        let layout = layout();
        let mut pages = initial();
        for (kind, gpa, length, bits, measured) in requests {
            let before = pages.clone();
            let result = match kind {
                0 => operations::protect_range(&mut pages, &layout, gpa, length, rights(bits)),
                1 => operations::grant_execute(&mut pages, &layout, gpa, length, || {}, |_, _| measured),
                _ => operations::revoke_execute(&mut pages, &layout, gpa, length),
            };
            match result {
                Ok(()) => {
                    prop_assert!(gpa % PAGE == 0 && length > 0 && length <= MAX_REQUEST_BYTES);
                    let end = gpa.checked_add(length.next_multiple_of(PAGE));
                    prop_assert!(end.is_some_and(|end| end <= RAM_PAGES * PAGE));
                    // Only the requested pages changed.
                    for (&page, &rights) in &pages.0 {
                        if page < gpa || page >= end.unwrap() {
                            prop_assert_eq!(Some(&rights), before.0.get(&page));
                        }
                    }
                }
                Err(denial) => {
                    prop_assert_eq!(&pages, &before, "a refused request changed pages");
                    prop_assert!(!matches!(denial, Denial::Ept(_)));
                }
            }
            for (&page, &rights) in &pages.0 {
                prop_assert!(!(rights.writable() && rights.executable()), "W+X at {page:#x}");
                let range = PhysRange::new(page, PAGE);
                if TEXT.overlaps(&range) || INITRD.overlaps(&range) {
                    prop_assert!(!rights.writable(), "measured page {page:#x} writable");
                }
            }
        }
    }
}
