//! Merging the two lists of CPUs the firmware can read: UEFI MP services (which CPUs answered
//! the firmware) and the ACPI MADT (which CPUs the platform declares). The union is started,
//! the boot CPU first, so that a CPU one source missed is not left outside the hypervisor.

use rampart_boot_info::MAX_CPUS;

/// The merged list and how the sources differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Merged {
    pub apic_ids: [u32; MAX_CPUS],
    pub count: usize,
    /// CPUs only the MADT listed (added).
    pub madt_only: usize,
    /// CPUs only MP services listed.
    pub mp_only: usize,
    /// CPUs beyond [`MAX_CPUS`], left out.
    pub dropped: usize,
}

impl Merged {
    pub fn ids(&self) -> &[u32] {
        &self.apic_ids[..self.count]
    }
}

/// `mp` (boot CPU first) followed by the MADT's CPUs it lacks.
pub fn merge(mp: &[u32], madt: &[u32]) -> Merged {
    let mut merged = Merged {
        apic_ids: [0; MAX_CPUS],
        count: 0,
        madt_only: 0,
        mp_only: mp.iter().filter(|id| !madt.contains(id)).count(),
        dropped: 0,
    };
    for (id, from_madt) in mp
        .iter()
        .map(|&id| (id, false))
        .chain(madt.iter().map(|&id| (id, true)))
    {
        if merged.ids().contains(&id) {
            continue;
        }
        if from_madt {
            merged.madt_only += 1;
        }
        if merged.count == MAX_CPUS {
            merged.dropped += 1;
            continue;
        }
        merged.apic_ids[merged.count] = id;
        merged.count += 1;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_sources_give_the_mp_order() {
        let merged = merge(&[2, 0, 1], &[0, 1, 2]);
        assert_eq!(merged.ids(), &[2, 0, 1]);
        assert_eq!(
            (merged.madt_only, merged.mp_only, merged.dropped),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_cpu_only_the_madt_names_is_added_after_the_others() {
        let merged = merge(&[0, 1], &[0, 1, 6]);
        assert_eq!(merged.ids(), &[0, 1, 6]);
        assert_eq!((merged.madt_only, merged.mp_only), (1, 0));
        let merged = merge(&[0, 3], &[0]);
        assert_eq!(merged.ids(), &[0, 3]);
        assert_eq!(merged.mp_only, 1);
    }

    #[test]
    fn duplicates_collapse_and_overflow_is_counted() {
        let madt: Vec<u32> = (0..20).collect();
        let merged = merge(&[0, 0], &madt);
        assert_eq!(merged.count, MAX_CPUS);
        assert_eq!(merged.dropped, 20 - MAX_CPUS);
        assert_eq!(merged.ids()[0], 0);
    }
}
