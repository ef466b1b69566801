//! What the policy protects, fixed at boot from the measured images.

use crate::ept::entry::Permissions;
use crate::handoff::PhysRange;
pub use crate::handoff::{KernelSegment, SegmentKind, MAX_SEGMENTS};

const PAGE: u64 = 4096;

impl SegmentKind {
    /// Classifies ELF program-header flags (PF_X = 1, PF_W = 2, PF_R = 4).
    pub fn from_elf_flags(flags: u32) -> Self {
        const PF_X: u32 = 1;
        const PF_W: u32 = 2;
        if flags & PF_X != 0 {
            Self::Text
        } else if flags & PF_W != 0 {
            Self::Data
        } else {
            Self::ReadOnly
        }
    }
}

/// The measured layout the policy protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtectedLayout {
    pub segments: [Option<KernelSegment>; MAX_SEGMENTS],
    /// The measured initrd: read-only to the guest, the reference for execute grants.
    pub initrd: PhysRange,
    /// Ranges the guest can never reach.
    pub hypervisor: [PhysRange; crate::handoff::HYPERVISOR_RANGES],
    /// Kernel text's rights: execute-only where the CPU's EPT allows it (IA32_VMX_EPT_VPID_CAP
    /// bit 0), so a compromised kernel cannot even read its code (as console hypervisors do);
    /// R-X otherwise.
    pub text_rights: Permissions,
    /// Rights of granted program text: R and user-mode execute only where the CPU has
    /// mode-based execute control (secondary control bit 22; real CPUs from Kaby Lake on, no
    /// Bochs model), so the kernel cannot run measured program text at CPL0 through a
    /// supervisor mapping; R-X otherwise (then EPT's execute right covers every CPL).
    pub program_text_rights: Permissions,
}

impl ProtectedLayout {
    /// True if mode-based execute control is on (program text is user-mode execute only).
    pub fn mode_based_execute(&self) -> bool {
        self.program_text_rights.contains(Permissions::USER_EXECUTE)
    }

    /// The page-rounded ranges whose EPT rights differ from RW-, with those rights: kernel
    /// text and read-only data, and the initrd. Text wins where a page is shared (it must stay
    /// executable; a shared page then loses W, which the linker script avoids).
    pub fn overrides(&self) -> impl Iterator<Item = (PhysRange, Permissions)> + '_ {
        let segments = self.segments.iter().flatten();
        let read_only = segments
            .clone()
            .filter(|s| s.kind == SegmentKind::ReadOnly)
            .map(|s| (round_out(s.range), Permissions::READ));
        let initrd = (self.initrd.length != 0).then(|| (round_out(self.initrd), Permissions::READ));
        let text = segments
            .filter(|s| s.kind == SegmentKind::Text)
            .map(|s| (round_out(s.range), self.text_rights));
        read_only.chain(initrd).chain(text)
    }

    /// The kernel segment containing `gpa`, if any.
    pub fn segment_at(&self, gpa: u64) -> Option<&KernelSegment> {
        self.segments
            .iter()
            .flatten()
            .find(|s| contains(round_out(s.range), gpa))
    }

    pub fn in_initrd(&self, gpa: u64) -> bool {
        self.initrd.length != 0 && contains(round_out(self.initrd), gpa)
    }

    pub fn in_hypervisor(&self, gpa: u64) -> bool {
        self.hypervisor.iter().any(|r| contains(round_out(*r), gpa))
    }
}

/// The range grown to whole pages.
pub fn round_out(range: PhysRange) -> PhysRange {
    let start = range.start & !(PAGE - 1);
    let end = range.end().saturating_add(PAGE - 1) & !(PAGE - 1);
    PhysRange::new(start, end - start)
}

fn contains(range: PhysRange, address: u64) -> bool {
    range.start <= address && address < range.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> ProtectedLayout {
        let mut segments = [None; MAX_SEGMENTS];
        segments[0] = Some(KernelSegment {
            range: PhysRange::new(0x400_0000, 0x4c4f),
            vaddr: 0,
            kind: SegmentKind::Text,
        });
        segments[1] = Some(KernelSegment {
            range: PhysRange::new(0x400_5000, 0xe58),
            vaddr: 0,
            kind: SegmentKind::ReadOnly,
        });
        segments[2] = Some(KernelSegment {
            range: PhysRange::new(0x400_6000, 0x6f000),
            vaddr: 0,
            kind: SegmentKind::Data,
        });
        ProtectedLayout {
            segments,
            initrd: PhysRange::new(0x800_0000, 0x3000),
            hypervisor: [
                PhysRange::new(0x1d80_0000, 0x80_0000),
                PhysRange::new(0x1e1b_9000, 0x23000),
                PhysRange::new(0x3_0000, 0x1_0000),
            ],
            text_rights: Permissions::EXECUTE_ONLY,
            program_text_rights: Permissions::READ_EXECUTE,
        }
    }

    #[test]
    fn elf_flags_classify_segments() {
        assert_eq!(SegmentKind::from_elf_flags(5), SegmentKind::Text);
        assert_eq!(SegmentKind::from_elf_flags(4), SegmentKind::ReadOnly);
        assert_eq!(SegmentKind::from_elf_flags(6), SegmentKind::Data);
        assert_eq!(
            SegmentKind::from_elf_flags(7),
            SegmentKind::Text,
            "W+X segment loses W"
        );
    }

    #[test]
    fn overrides_cover_text_rodata_and_initrd_in_whole_pages() {
        let overrides: Vec<_> = layout().overrides().collect();
        assert!(overrides.contains(&(
            PhysRange::new(0x400_0000, 0x5000),
            Permissions::EXECUTE_ONLY
        )));
        assert!(overrides.contains(&(PhysRange::new(0x400_5000, 0x1000), Permissions::READ)));
        assert!(overrides.contains(&(PhysRange::new(0x800_0000, 0x3000), Permissions::READ)));
        assert_eq!(overrides.len(), 3, "data keeps the default RW-");
    }

    #[test]
    fn lookups() {
        let l = layout();
        assert_eq!(l.segment_at(0x400_4fff).unwrap().kind, SegmentKind::Text);
        assert!(l.segment_at(0x500_0000).is_none());
        assert!(l.in_initrd(0x800_2fff) && !l.in_initrd(0x800_3000));
        assert!(l.in_hypervisor(0x1d80_0000) && !l.in_hypervisor(0x1d7f_ffff));
    }
}
