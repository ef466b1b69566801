//! Process-context identifiers (SDM Vol. 3A 4.10.1 "Process-Context Identifiers (PCIDs)") for
//! KPTI, and the CR3 values of an address space. Pure.
//!
//! With CR4.PCIDE=1, CR3 bits 11:0 are the PCID and a MOV to CR3 with bit 63 set keeps the
//! TLB entries of the new PCID (4.10.4.1 "Operations that Invalidate TLBs and Paging-Structure
//! Caches"). The kernel root and idle contexts use PCID 0; a process gets a pair from the slot
//! of its kernel stack (unique among live processes, reused after exit): kernel-mode
//! `2 * slot + 1`, user-mode `2 * slot + 2`.

use super::page_table::ADDRESS_MASK;

/// CR3 bit 63 on a MOV to CR3 with CR4.PCIDE=1: do not invalidate the new PCID's entries.
pub const NO_FLUSH: u64 = 1 << 63;
/// PCIDs are 12 bits.
pub const PCID_MASK: u64 = 0xfff;
/// Distinct process pairs before PCIDs repeat (pairs 1..=4094 fit in 12 bits).
pub const PAIRS: u64 = (PCID_MASK - 1) / 2;

/// The CR3 values of one address space: kernel mode and user mode (equal without KPTI).
/// Neither carries [`NO_FLUSH`]: that is chosen per load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cr3Pair {
    pub kernel: u64,
    pub user: u64,
}

impl Cr3Pair {
    /// One root for both modes, PCID 0 (the kernel root, kernel threads, `kpti=off`).
    pub const fn single(root: u64) -> Self {
        Self {
            kernel: root & ADDRESS_MASK,
            user: root & ADDRESS_MASK,
        }
    }

    /// The pair of a process with `kernel_root` and `user_root` (0 = no KPTI) whose kernel
    /// stack is slot `slot`; PCIDs only if `pcid` (CR4.PCIDE is on).
    pub fn of_process(kernel_root: u64, user_root: u64, slot: u64, pcid: bool) -> Self {
        if user_root == 0 {
            return Self::single(kernel_root);
        }
        let (kernel_pcid, user_pcid) = if pcid { pcids(slot) } else { (0, 0) };
        Self {
            kernel: (kernel_root & ADDRESS_MASK) | kernel_pcid,
            user: (user_root & ADDRESS_MASK) | user_pcid,
        }
    }
}

/// The (kernel-mode, user-mode) PCIDs of kernel stack slot `slot`: never 0, never equal, at
/// most 4094.
pub const fn pcids(slot: u64) -> (u64, u64) {
    let pair = slot % PAIRS;
    (2 * pair + 1, 2 * pair + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcids_are_distinct_nonzero_and_fit() {
        for slot in [0, 1, 2, PAIRS - 1, PAIRS, 5000] {
            let (kernel, user) = pcids(slot);
            assert!(kernel != 0 && user != 0 && kernel != user);
            assert!(kernel <= PCID_MASK && user <= PCID_MASK);
        }
        assert_eq!(pcids(0), (1, 2));
        assert_eq!(pcids(3), (7, 8));
        let all: std::collections::BTreeSet<u64> =
            (0..PAIRS).flat_map(|s| [pcids(s).0, pcids(s).1]).collect();
        assert_eq!(all.len() as u64, 2 * PAIRS);
    }

    #[test]
    fn pairs_carry_roots_and_pcids() {
        let pair = Cr3Pair::of_process(0x5000, 0x9000, 3, true);
        assert_eq!(
            pair,
            Cr3Pair {
                kernel: 0x5007,
                user: 0x9008
            }
        );
        let plain = Cr3Pair::of_process(0x5000, 0x9000, 3, false);
        assert_eq!(
            plain,
            Cr3Pair {
                kernel: 0x5000,
                user: 0x9000
            }
        );
        assert_eq!(
            Cr3Pair::of_process(0x5000, 0, 3, true),
            Cr3Pair::single(0x5000)
        );
        assert_eq!(Cr3Pair::single(0x5000).user & NO_FLUSH, 0);
    }
}
