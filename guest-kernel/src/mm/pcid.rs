//! Process-context identifiers (SDM Vol. 3A 4.10.1 "Process-Context Identifiers (PCIDs)") for
//! KPTI, and the CR3 values of a CPU's roots. Pure.
//!
//! With CR4.PCIDE=1, CR3 bits 11:0 are the PCID and a MOV to CR3 with bit 63 set keeps the
//! TLB entries of the new PCID (4.10.4.1 "Operations that Invalidate TLBs and Paging-Structure
//! Caches"). Each CPU runs on its own roots for good (`mm::cpu_roots`), so the PCIDs are fixed:
//! [`KERNEL_PCID`] for the kernel-mode root, [`USER_PCID`] for the user-mode one; a process
//! switch flushes both (the roots stay, their lower half changes).

use super::page_table::ADDRESS_MASK;

/// CR3 bit 63 on a MOV to CR3 with CR4.PCIDE=1: do not invalidate the new PCID's entries.
pub const NO_FLUSH: u64 = 1 << 63;
/// The PCIDs of every CPU's kernel-mode and user-mode roots (0 is the boot root's).
pub const KERNEL_PCID: u64 = 1;
pub const USER_PCID: u64 = 2;

/// The CR3 values of one CPU: kernel mode and user mode (equal without KPTI). Neither
/// carries [`NO_FLUSH`]: that is chosen per load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cr3Pair {
    pub kernel: u64,
    pub user: u64,
}

impl Cr3Pair {
    /// The values of a CPU whose roots are `kernel_root` and `user_root` (0 = no KPTI); PCIDs
    /// only if `pcid` (CR4.PCIDE is on).
    pub fn of_cpu(kernel_root: u64, user_root: u64, pcid: bool) -> Self {
        let kernel = kernel_root & ADDRESS_MASK;
        if user_root == 0 {
            return Self {
                kernel,
                user: kernel,
            };
        }
        let (kernel_pcid, user_pcid) = if pcid {
            (KERNEL_PCID, USER_PCID)
        } else {
            (0, 0)
        };
        Self {
            kernel: kernel | kernel_pcid,
            user: (user_root & ADDRESS_MASK) | user_pcid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_carry_roots_and_pcids() {
        let pair = Cr3Pair::of_cpu(0x5000, 0x9000, true);
        assert_eq!(
            pair,
            Cr3Pair {
                kernel: 0x5001,
                user: 0x9002
            }
        );
        let plain = Cr3Pair::of_cpu(0x5000, 0x9000, false);
        assert_eq!(
            plain,
            Cr3Pair {
                kernel: 0x5000,
                user: 0x9000
            }
        );
        let single = Cr3Pair::of_cpu(0x5000, 0, true);
        assert_eq!((single.kernel, single.user), (0x5000, 0x5000));
        assert_eq!(pair.user & NO_FLUSH, 0);
    }
}
