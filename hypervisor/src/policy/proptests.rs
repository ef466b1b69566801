//! Invariants under random request sequences (hypervisor/DESIGN.md invariants 1-4 and 7).

use super::layout::{KernelSegment, ProtectedLayout, SegmentKind, MAX_SEGMENTS};
use super::operations::{self, PageTable};
use crate::ept::builder::tests::ept;
use crate::ept::builder::PageSizes;
use crate::ept::entry::Permissions;
use crate::ept::layout::build_identity_map;
use crate::handoff::PhysRange;
use proptest::prelude::*;
use rampart_boot_info::{MemoryKind, MemoryRegion};

const MIB: u64 = 1 << 20;
const TOP: u64 = 16 * MIB;
const TEXT: PhysRange = PhysRange::new(4 * MIB, 5 * 4096);
const RODATA: PhysRange = PhysRange::new(4 * MIB + 5 * 4096, 4096);
const INITRD: PhysRange = PhysRange::new(8 * MIB, 4 * 4096);
const HV: PhysRange = PhysRange::new(12 * MIB, 2 * MIB);
const IMAGE: PhysRange = PhysRange::new(14 * MIB + 4096, 3 * 4096);

fn layout(text_rights: Permissions) -> ProtectedLayout {
    let mut segments = [None; MAX_SEGMENTS];
    segments[0] = Some(KernelSegment {
        range: TEXT,
        vaddr: 0,
        kind: SegmentKind::Text,
    });
    segments[1] = Some(KernelSegment {
        range: RODATA,
        vaddr: 0,
        kind: SegmentKind::ReadOnly,
    });
    ProtectedLayout {
        segments,
        initrd: INITRD,
        hypervisor: [HV, IMAGE, PhysRange::new(0, 0)],
        text_rights,
        program_text_rights: Permissions::READ_EXECUTE,
    }
}

#[derive(Clone, Debug)]
enum Request {
    Grant {
        page: u64,
        pages: u64,
        measured: bool,
    },
    Revoke {
        page: u64,
        pages: u64,
    },
    Protect {
        page: u64,
        pages: u64,
        keep: u8,
    },
}

fn request() -> impl Strategy<Value = Request> {
    let page = 0u64..(TOP / 4096);
    prop_oneof![
        (page.clone(), 1u64..8, any::<bool>()).prop_map(|(page, pages, measured)| Request::Grant {
            page,
            pages,
            measured
        }),
        (page.clone(), 1u64..8).prop_map(|(page, pages)| Request::Revoke { page, pages }),
        (page, 1u64..8, 0u8..8).prop_map(|(page, pages, keep)| Request::Protect {
            page,
            pages,
            keep
        }),
    ]
}

fn rights_of(keep: u8) -> Permissions {
    [
        Permissions::empty(),
        Permissions::READ,
        Permissions::READ_WRITE,
        Permissions::READ_EXECUTE,
        Permissions::EXECUTE_ONLY,
        Permissions::ALL,
        Permissions::READ,
        Permissions::READ_WRITE,
    ][usize::from(keep)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_sequence_of_requests_breaks_the_invariants(
        requests in proptest::collection::vec(request(), 1..40),
        one_gig in any::<bool>(),
        execute_only in any::<bool>(),
    ) {
        let text_rights = if execute_only { Permissions::EXECUTE_ONLY } else { Permissions::READ_EXECUTE };
        let layout = layout(text_rights);
        let mut table = ept(PageSizes { large_2m: true, huge_1g: one_gig });
        let ram = [MemoryRegion::new(0, TOP, MemoryKind::Usable)];
        build_identity_map(&mut table, &ram, &[HV, IMAGE], TOP).unwrap();
        operations::apply_initial(&mut table, &layout).unwrap();
        // Pages protected read-only by a request: they may never become writable again.
        let mut locked_read_only = std::collections::HashSet::new();
        let mut locked_no_access = std::collections::HashSet::new();
        for request in requests {
            let result = match request {
                Request::Grant { page, pages, measured } => {
                    operations::grant_execute(&mut table, &layout, page * 4096, pages * 4096, || {}, |_, _| measured)
                }
                Request::Revoke { page, pages } => {
                    operations::revoke_execute(&mut table, &layout, page * 4096, pages * 4096)
                }
                Request::Protect { page, pages, keep } => {
                    let r = operations::protect_range(&mut table, &layout, page * 4096, pages * 4096, rights_of(keep));
                    if r.is_ok() && !rights_of(keep).writable() {
                        locked_read_only.extend((page..page + pages).map(|p| p * 4096));
                    }
                    if r.is_ok() && rights_of(keep) == Permissions::empty() {
                        locked_no_access.extend((page..page + pages).map(|p| p * 4096));
                    }
                    r
                }
            };
            prop_assert!(!matches!(result, Err(operations::Denial::Ept(_))));
            for gpa in (0..TOP).step_by(4096) {
                let page = table.page(gpa);
                let hidden = [HV, IMAGE].iter().any(|r| r.overlaps(&PhysRange::new(gpa, 4096)));
                let absent_ok = hidden || locked_no_access.contains(&gpa);
                prop_assert_eq!(page.is_none(), absent_ok, "hypervisor pages absent, others present: {:#x}", gpa);
                if hidden {
                    prop_assert!(page.is_none(), "hypervisor page {:#x} mapped", gpa);
                }
                let Some((rights, _)) = page else { continue };
                prop_assert!(!(rights.writable() && rights.executable()), "W+X at {:#x}", gpa);
                if (TEXT.start..TEXT.end()).contains(&gpa) {
                    // Only ever tightened (ProtectRange may drop X), never writable.
                    prop_assert!(!rights.writable(), "kernel text writable");
                }
                if (RODATA.start..RODATA.end()).contains(&gpa) || (INITRD.start..INITRD.end()).contains(&gpa) {
                    prop_assert!(!rights.writable() && !rights.executable());
                }
                if locked_read_only.contains(&gpa) {
                    prop_assert!(!rights.writable(), "lock loosened at {:#x}", gpa);
                }
            }
        }
    }
}

#[test]
fn unmeasured_content_is_never_granted() {
    let layout = layout(Permissions::EXECUTE_ONLY);
    let mut table = ept(PageSizes {
        large_2m: true,
        huge_1g: true,
    });
    let ram = [MemoryRegion::new(0, TOP, MemoryKind::Usable)];
    build_identity_map(&mut table, &ram, &[HV, IMAGE], TOP).unwrap();
    operations::apply_initial(&mut table, &layout).unwrap();
    let r = operations::grant_execute(&mut table, &layout, 2 * MIB, 4096, || {}, |_, _| false);
    assert_eq!(
        r,
        Err(operations::Denial::Denied {
            rule: rampart_hv_abi::Rule::UnmeasuredCode,
            gpa: 2 * MIB
        })
    );
    assert_eq!(table.page(2 * MIB).unwrap().0, Permissions::READ_WRITE);
    operations::grant_execute(
        &mut table,
        &layout,
        2 * MIB,
        100,
        || {},
        |_, len| len == 100,
    )
    .unwrap();
    assert_eq!(table.page(2 * MIB).unwrap().0, Permissions::READ_EXECUTE);
    let r = operations::revoke_execute(&mut table, &layout, TEXT.start, 4096);
    assert!(matches!(
        r,
        Err(operations::Denial::Denied {
            rule: rampart_hv_abi::Rule::KernelText,
            ..
        })
    ));
    let r = operations::grant_execute(&mut table, &layout, HV.start, 4096, || {}, |_, _| true);
    assert!(matches!(
        r,
        Err(operations::Denial::Denied {
            rule: rampart_hv_abi::Rule::HypervisorMemory,
            ..
        })
    ));
    assert_eq!(
        operations::grant_execute(&mut table, &layout, 0x123, 1, || {}, |_, _| true),
        Err(operations::Denial::OutOfRange)
    );
    assert_eq!(
        operations::grant_execute(&mut table, &layout, 0, 0, || {}, |_, _| true),
        Err(operations::Denial::OutOfRange)
    );
    assert_eq!(
        operations::grant_execute(&mut table, &layout, !0xfff, 0x2000, || {}, |_, _| true),
        Err(operations::Denial::OutOfRange)
    );
}

/// hypervisor/DESIGN.md invariant 9: GrantExecute decides on the page's bytes only once no vCPU can
/// write them. A page table that records every change shows the order: R-- first, then the freeze
/// (the shootdown), then the compare, then R-X; on a mismatch back to RW-.
#[test]
fn grant_compares_only_after_write_access_is_gone() {
    use std::cell::RefCell;
    struct Recording<'a, T> {
        inner: &'a mut T,
        events: &'a RefCell<Vec<String>>,
    }
    impl<T: PageTable> PageTable for Recording<'_, T> {
        fn page(
            &mut self,
            gpa: u64,
        ) -> Option<(Permissions, Option<crate::ept::entry::MemoryType>)> {
            self.inner.page(gpa)
        }
        fn set(
            &mut self,
            gpa: u64,
            length: u64,
            rights: Permissions,
        ) -> Result<(), crate::ept::builder::EptError> {
            self.events
                .borrow_mut()
                .push(format!("set {gpa:#x}+{length:#x} {rights:?}"));
            self.inner.set(gpa, length, rights)
        }
    }
    let layout = layout(Permissions::EXECUTE_ONLY);
    let mut ept_table = ept(PageSizes {
        large_2m: true,
        huge_1g: true,
    });
    let ram = [MemoryRegion::new(0, TOP, MemoryKind::Usable)];
    build_identity_map(&mut ept_table, &ram, &[HV, IMAGE], TOP).unwrap();
    operations::apply_initial(&mut ept_table, &layout).unwrap();
    for measured in [true, false] {
        let events = RefCell::new(Vec::new());
        let mut table = Recording {
            inner: &mut ept_table,
            events: &events,
        };
        let _ = operations::grant_execute(
            &mut table,
            &layout,
            2 * MIB,
            0x2000,
            || events.borrow_mut().push("freeze".into()),
            |_, _| {
                events.borrow_mut().push("compare".into());
                measured
            },
        );
        let last = if measured {
            Permissions::READ_EXECUTE
        } else {
            Permissions::READ_WRITE
        };
        assert_eq!(
            *events.borrow(),
            [
                format!("set 0x200000+0x2000 {:?}", Permissions::READ),
                "freeze".to_string(),
                "compare".to_string(),
                format!("set 0x200000+0x2000 {last:?}"),
            ],
            "measured = {measured}"
        );
        if measured {
            operations::revoke_execute(&mut ept_table, &layout, 2 * MIB, 0x2000).unwrap();
        }
    }
}

/// Under mode-based execute control a grant gives R and user-mode execute only: the kernel
/// cannot run measured program text at CPL0 through a supervisor mapping; revoke undoes it, and
/// kernel text stays supervisor-execute only (hypervisor/DESIGN.md invariant 3 with MBEC).
#[test]
fn grants_under_mode_based_execute_are_user_execute_only() {
    let layout = ProtectedLayout {
        program_text_rights: Permissions::READ_USER_EXECUTE,
        ..layout(Permissions::EXECUTE_ONLY)
    };
    assert!(layout.mode_based_execute());
    let mut table = ept(PageSizes {
        large_2m: true,
        huge_1g: true,
    });
    let ram = [MemoryRegion::new(0, TOP, MemoryKind::Usable)];
    build_identity_map(&mut table, &ram, &[HV, IMAGE], TOP).unwrap();
    operations::apply_initial(&mut table, &layout).unwrap();
    operations::grant_execute(&mut table, &layout, 2 * MIB, 4096, || {}, |_, _| true).unwrap();
    let granted = table.page(2 * MIB).unwrap().0;
    assert_eq!(granted, Permissions::READ_USER_EXECUTE);
    assert!(
        !granted.contains(Permissions::EXECUTE),
        "no supervisor-mode execute"
    );
    assert!(!granted.writable());
    assert_eq!(table.page(TEXT.start).unwrap().0, Permissions::EXECUTE_ONLY);
    operations::revoke_execute(&mut table, &layout, 2 * MIB, 4096).unwrap();
    assert_eq!(table.page(2 * MIB).unwrap().0, Permissions::READ_WRITE);
}
