use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// Guest memory as 8-byte words; `hypervisor` frames are refused like the real thing.
#[derive(Clone, Default)]
pub struct FakeMemory {
    pub words: BTreeMap<u64, u64>,
    pub hypervisor: BTreeSet<u64>,
    /// Frames EPT keeps read-only (the test's model of the lock).
    pub read_only: BTreeSet<u64>,
}

impl PhysicalMemory for FakeMemory {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        if self.hypervisor.contains(&(gpa & !0xfff)) {
            return Err(WalkError::HypervisorMemory(gpa));
        }
        Ok(self.words.get(&gpa).copied().unwrap_or(0))
    }
}

impl TableMemory for FakeMemory {
    fn set_bits(&mut self, gpa: u64, bits: u64) -> Result<(), WalkError> {
        let value = self.read_u64(gpa)?;
        self.words.insert(gpa, value | bits);
        Ok(())
    }
}

impl FakeMemory {
    pub fn is_plain_ram(&self, frame: u64) -> bool {
        !self.hypervisor.contains(&frame) && !self.read_only.contains(&frame) && frame < TOP
    }
}

pub const TOP: u64 = 64 << 20;
pub const ROOT: u64 = 0x10_0000;
const PDPT: u64 = 0x10_1000;
const PD: u64 = 0x10_2000;
pub const TEXT_PT: u64 = 0x10_3000;
pub const STACK_PT: u64 = 0x10_4000;
const STACK_PD: u64 = 0x10_5000;
const STACK_PDPT: u64 = 0x10_6000;
/// Kernel image slot (PML4 511, PDPT 510, PD 0): text at this address maps 0x40_0000.
pub const TEXT_VA: u64 = 0xffff_ffff_8000_0000;
pub const TEXT_GPA: u64 = 0x40_0000;
/// Stack window: PML4 510, first 2 MiB.
pub const STACKS_VA: u64 = 0xffff_ff00_0000_0000;
pub const RW: u64 = PTE_PRESENT | PTE_WRITABLE;

/// A kernel half: text (4 pages, read-only) through PDPT/PD/PT, a 2 MiB writable data page,
/// and a stack window PT with one stack page.
pub fn kernel() -> FakeMemory {
    let mut m = FakeMemory::default();
    let w = &mut m.words;
    w.insert(ROOT + 511 * 8, PDPT | RW);
    w.insert(PDPT + 510 * 8, PD | RW);
    w.insert(PD, TEXT_PT | RW);
    for page in 0..4 {
        w.insert(TEXT_PT + page * 8, (TEXT_GPA + page * PAGE) | PTE_PRESENT);
    }
    w.insert(PD + 8, 0x60_0000 | RW | PTE_PAGE_SIZE);
    w.insert(ROOT + 510 * 8, STACK_PDPT | RW);
    w.insert(STACK_PDPT, STACK_PD | RW);
    w.insert(STACK_PD, STACK_PT | RW);
    w.insert(STACK_PT + 8, 0x80_0000 | RW);
    m
}

pub fn window() -> StackWindow {
    StackWindow::new(STACKS_VA, 2 << 20).unwrap()
}

#[test]
fn lock_covers_every_table_but_the_stack_window_ones() {
    let mut m = kernel();
    let locked = collect_and_preset(&mut m, &[ROOT], window()).unwrap();
    let mut frames = locked.frames().to_vec();
    frames.sort_unstable();
    assert_eq!(
        frames,
        [ROOT, PDPT, PD, TEXT_PT, STACK_PD, STACK_PDPT]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(!locked.contains(STACK_PT));
    // Accessed on every present entry, dirty on writable leaves only.
    assert_eq!(m.words[&(ROOT + 511 * 8)] & ACCESSED, ACCESSED);
    assert_eq!(m.words[&TEXT_PT] & (ACCESSED | DIRTY), ACCESSED);
    assert_eq!(m.words[&(PD + 8)] & (ACCESSED | DIRTY), ACCESSED | DIRTY);
    assert_eq!(
        m.words[&(STACK_PT + 8)] & ACCESSED,
        0,
        "window tables untouched"
    );
}

#[test]
fn a_window_table_also_used_outside_the_window_is_locked() {
    let mut m = kernel();
    m.words.insert(PD + 16, STACK_PT | RW);
    let locked = collect_and_preset(&mut m, &[ROOT], window()).unwrap();
    assert!(locked.contains(STACK_PT));
}

#[test]
fn hostile_tables_are_refused_not_followed() {
    let mut m = kernel();
    m.hypervisor.insert(0x20_0000);
    m.words.insert(PD + 24, 0x20_0000 | RW);
    assert_eq!(
        collect_and_preset(&mut m, &[ROOT], window()).unwrap_err(),
        Refusal::Unreadable
    );
    let mut m = kernel();
    m.words
        .insert(ROOT + 300 * 8, 0x30_0000 | RW | PTE_PAGE_SIZE);
    assert_eq!(
        collect_and_preset(&mut m, &[ROOT], window()).unwrap_err(),
        Refusal::Invalid
    );
}

#[test]
fn windows_must_be_aligned_kernel_half_ranges() {
    assert!(StackWindow::new(STACKS_VA, 2 << 20).is_some());
    assert!(StackWindow::new(0, 0).is_some());
    assert!(StackWindow::new(STACKS_VA + 4096, 2 << 20).is_none());
    assert!(
        StackWindow::new(0x4000_0000, 2 << 20).is_none(),
        "lower half"
    );
    assert!(StackWindow::new(u64::MAX - (2 << 20) + 1, 4 << 20).is_none());
}

#[test]
fn recorded_translations_are_checked() {
    let m = kernel();
    let text = Protected {
        va: TEXT_VA,
        gpa: TEXT_GPA,
        length: 4 * PAGE,
    };
    assert_eq!(translates_as_recorded(&m, ROOT, &text, false), Ok(()));
    let wrong = Protected {
        gpa: TEXT_GPA + PAGE,
        ..text
    };
    assert_eq!(
        translates_as_recorded(&m, ROOT, &wrong, false),
        Err(Refusal::Denied(TEXT_GPA))
    );
}

/// A new root at `frame` with the kernel half copied from ROOT.
pub fn copy_root(m: &mut FakeMemory, frame: u64) {
    for index in KERNEL_HALF_FIRST..ENTRIES {
        let value = m
            .words
            .get(&(ROOT + index as u64 * 8))
            .copied()
            .unwrap_or(0);
        m.words.insert(frame + index as u64 * 8, value);
    }
}

/// Per-CPU roots of two vCPUs (0x20_0000 and 0x21_0000, KPTI user roots 0x22_0000 and
/// 0x23_0000), locked together with ROOT; each root's lower-half entries 0 and 255 point at
/// that CPU's own tables (0x30_0000 + ...). Returns the lock.
pub fn per_cpu_lock(m: &mut FakeMemory) -> LockedRoots {
    let mut vcpus = [None; MAX_VCPUS];
    for (cpu, (kernel, user)) in [(0x20_0000, 0x22_0000), (0x21_0000, 0x23_0000)]
        .into_iter()
        .enumerate()
    {
        for root in [kernel, user] {
            copy_root(m, root);
        }
        for (n, slot) in [0u64, 255].into_iter().enumerate() {
            let table = 0x30_0000 + (cpu as u64 * 2 + n as u64) * PAGE;
            m.words.insert(kernel + slot * 8, table | RW | 4);
            m.words.insert(user + slot * 8, table | RW | 4);
        }
        vcpus[cpu] = Some(VcpuRoots {
            kernel_cr3: kernel | 1,
            user_cr3: user | 2,
        });
    }
    let roots: Vec<u64> = vcpus.iter().flatten().flat_map(|r| r.roots()).collect();
    let locked = collect_and_preset(m, &roots, window()).unwrap();
    for root in &roots {
        check_lower_half(m, *root, &locked).unwrap();
    }
    m.read_only.extend(locked.frames());
    LockedRoots { locked, vcpus }
}

#[test]
fn each_vcpu_loads_only_its_own_roots() {
    let mut m = kernel();
    let lock = per_cpu_lock(&mut m);
    assert!(lock.may_load(0, 0x20_0000 | 1));
    assert!(
        lock.may_load(0, 0x20_0000 | 7 | (1 << 63)),
        "any PCID, no-flush"
    );
    assert!(lock.may_load(0, 0x22_0000 | 2));
    assert!(!lock.may_load(0, 0x21_0000 | 1), "another vCPU's root");
    assert!(!lock.may_load(1, 0x22_0000), "another vCPU's user root");
    assert!(!lock.may_load(0, ROOT), "the boot root");
    assert!(!lock.may_load(0, 0x30_0000), "a per-CPU lower table");
    assert!(!lock.may_load(0, 0x20_0000 | (1 << 52)), "reserved bit");
    assert!(!lock.may_load(5, 0x20_0000), "a vCPU without roots");
    assert!(lock.is_protected_frame(0x20_0123) && lock.is_protected_frame(0x23_0000));
    assert!(
        !lock.is_protected_frame(0x30_0000),
        "lower tables stay the guest's"
    );
    let targets = lock.vcpus[1].unwrap().targets();
    assert_eq!(
        targets[..],
        [
            0x21_0001,
            0x21_0001 | 1 << 63,
            0x23_0002,
            0x23_0002 | 1 << 63
        ]
    );
    let plain = VcpuRoots {
        kernel_cr3: 0x20_0000,
        user_cr3: 0,
    };
    assert_eq!(plain.targets().len(), 2, "without KPTI: two values");
}

#[test]
fn lower_half_entries_must_not_reach_locked_pages() {
    for target in [PD, 0x20_0000, 0x21_0000] {
        let mut m = kernel();
        copy_root(&mut m, 0x20_0000);
        copy_root(&mut m, 0x21_0000);
        m.words.insert(0x20_0000 + 8, target | RW);
        let locked = collect_and_preset(&mut m, &[0x20_0000, 0x21_0000], window()).unwrap();
        assert_eq!(
            check_lower_half(&mut m, 0x20_0000, &locked),
            Err(Refusal::Denied(target)),
            "{target:#x}"
        );
    }
    // A per-CPU table also linked into the kernel half before the lock gets locked by the
    // walk, and is then refused as a lower-half table.
    let mut m = kernel();
    copy_root(&mut m, 0x20_0000);
    m.words.insert(0x20_0000, 0x30_0000 | RW);
    m.words.insert(0x20_0000 + 300 * 8, 0x30_0000 | RW);
    let locked = collect_and_preset(&mut m, &[0x20_0000], window()).unwrap();
    assert!(locked.contains(0x30_0000));
    assert_eq!(
        check_lower_half(&mut m, 0x20_0000, &locked),
        Err(Refusal::Denied(0x30_0000))
    );
    let mut m = kernel();
    copy_root(&mut m, 0x20_0000);
    m.words.insert(0x20_0000, 0x30_0000 | RW | PTE_PAGE_SIZE);
    let locked = collect_and_preset(&mut m, &[0x20_0000], window()).unwrap();
    assert!(
        check_lower_half(&mut m, 0x20_0000, &locked).is_err(),
        "large page"
    );
    // Accepted entries get their accessed bit.
    let mut m = kernel();
    let lock = per_cpu_lock(&mut m);
    assert_eq!(m.words[&0x20_0000] & ACCESSED, ACCESSED);
    assert!(!lock.locked.contains(0x30_0000));
}

#[test]
fn declared_roots_are_distinct_plain_frames() {
    let m = kernel();
    let ram = |f| m.is_plain_ram(f) && f != 0x50_0000;
    let roots = |k: u64, u: u64| VcpuRoots {
        kernel_cr3: k,
        user_cr3: u,
    };
    assert_eq!(
        check_declared(&[roots(0x20_0000, 0x22_0000), roots(0x21_0000, 0)], &ram),
        Ok(())
    );
    for (declared, error) in [
        (
            [roots(0x20_0000, 0x20_0000), roots(0x21_0000, 0)],
            Refusal::Denied(0x20_0000),
        ),
        (
            [roots(0x20_0000, 0), roots(0x21_0000, 0x20_0000)],
            Refusal::Denied(0x20_0000),
        ),
        (
            [roots(0x20_0000, 0), roots(0x50_0000, 0)],
            Refusal::Denied(0x50_0000),
        ),
        (
            [roots(0x20_0000, 0), roots(0x21_0000 | 1 << 55, 0)],
            Refusal::Invalid,
        ),
    ] {
        assert_eq!(check_declared(&declared, &ram), Err(error), "{declared:?}");
    }
}

#[test]
fn a_table_linked_at_two_levels_is_walked_at_both() {
    // PML4 257 -> ALIAS -> PDPT: the walk meets PDPT first as a page directory (so PD looks
    // like a level-1 table) and later as what it is on the text's path, where PD's entries
    // point at TEXT_PT: that table must be locked too.
    const ALIAS: u64 = 0x10_7000;
    let mut m = kernel();
    m.words.insert(ROOT + 257 * 8, ALIAS | RW);
    m.words.insert(ALIAS, PDPT | RW);
    let locked = collect_and_preset(&mut m, &[ROOT], window()).unwrap();
    assert!(locked.contains(ALIAS) && locked.contains(PD));
    assert!(
        locked.contains(TEXT_PT),
        "the text's level-1 table is locked"
    );
}
