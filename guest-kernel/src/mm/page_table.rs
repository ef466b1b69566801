//! The x86-64 4-level page-table format (SDM Vol. 3A 4.5, "4-Level Paging"): entry bits and
//! their encoding.

/// Size of a 4 KiB page.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a 2 MiB page (a page-directory leaf).
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Bytes one page directory maps (512 2 MiB pages).
pub const GIB: u64 = 1 << 30;
/// Entries in every table.
pub const ENTRIES: usize = 512;

/// Bit 0: the entry maps something.
pub const PRESENT: u64 = 1 << 0;
/// Bit 1: writes allowed (enforced at CPL0 only with CR0.WP=1).
pub const WRITABLE: u64 = 1 << 1;
/// Bit 2: user-mode accesses allowed.
pub const USER: u64 = 1 << 2;
/// Bit 3: page-level write-through (PAT index bit 0).
pub const WRITE_THROUGH: u64 = 1 << 3;
/// Bit 4: page-level cache disable (PAT index bit 1). With PWT and the power-on PAT: UC.
pub const CACHE_DISABLE: u64 = 1 << 4;
/// Bit 5: accessed. The CPU sets it on the first use of an entry (SDM Vol. 3A 4.8 "Accessed
/// and Dirty Flags"); tables built with it set need no such write, which matters once the
/// hypervisor holds them read-only in EPT (the CPU's own A/D write would be an EPT violation).
pub const ACCESSED: u64 = 1 << 5;
/// Bit 6 in a leaf: dirty. The CPU sets it on the first write through the leaf (4.8).
pub const DIRTY: u64 = 1 << 6;
/// Bit 7 in a PDE: the entry maps a 2 MiB page.
pub const HUGE_PAGE: u64 = 1 << 7;
/// Bit 63: instruction fetches not allowed (needs EFER.NXE, else the bit is reserved).
pub const NO_EXECUTE: u64 = 1 << 63;
/// Bits 51:12 of an entry hold a physical address (MAXPHYADDR is at most 52).
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// A page table of any level, page aligned as the CPU requires.
#[repr(C, align(4096))]
#[derive(Clone)]
pub struct PageTable(pub [u64; ENTRIES]);

impl PageTable {
    pub const EMPTY: Self = Self([0; ENTRIES]);
}

const _: () = assert!(core::mem::size_of::<PageTable>() == PAGE_SIZE as usize);

/// An entry pointing at `address` (4 KiB aligned) with `flags`.
pub const fn entry(address: u64, flags: u64) -> u64 {
    (address & ADDRESS_MASK) | flags
}

/// The address an entry points to.
pub const fn entry_address(entry: u64) -> u64 {
    entry & ADDRESS_MASK
}

/// Index of `address` in the table of `level` (4 = PML4 .. 1 = page table).
pub const fn index(address: u64, level: u32) -> usize {
    ((address >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// What the kernel may do with a page; turned into entry bits by [`Access::flags`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Kernel text: read and execute.
    ReadExecute,
    /// Kernel rodata: read only.
    Read,
    /// Kernel data and all other RAM: read and write, never execute.
    ReadWrite,
    /// Memory-mapped devices: read and write, uncacheable, never execute.
    Device,
}

impl Access {
    /// Entry bits for this access (supervisor only). `nx` says whether EFER.NXE is on: without
    /// it bit 63 is reserved and the only W^X left is the hypervisor's.
    pub const fn flags(self, nx: bool) -> u64 {
        let no_execute = if nx { NO_EXECUTE } else { 0 };
        match self {
            Self::ReadExecute => PRESENT,
            Self::Read => PRESENT | no_execute,
            Self::ReadWrite => PRESENT | WRITABLE | no_execute,
            Self::Device => PRESENT | WRITABLE | WRITE_THROUGH | CACHE_DISABLE | no_execute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_addresses() {
        let e = entry(0x1234_5000, Access::ReadWrite.flags(true));
        assert_eq!(entry_address(e), 0x1234_5000);
        assert_eq!(
            e & (PRESENT | WRITABLE | NO_EXECUTE),
            PRESENT | WRITABLE | NO_EXECUTE
        );
    }

    #[test]
    fn no_access_is_both_writable_and_executable() {
        for access in [
            Access::ReadExecute,
            Access::Read,
            Access::ReadWrite,
            Access::Device,
        ] {
            let flags = access.flags(true);
            assert!(
                flags & WRITABLE == 0 || flags & NO_EXECUTE != 0,
                "{access:?}"
            );
            assert_eq!(flags & USER, 0);
        }
    }

    #[test]
    fn indexes_split_the_address() {
        let address = (3 << 39) | (5 << 30) | (7 << 21) | (9 << 12);
        assert_eq!(
            [4, 3, 2, 1].map(|level| index(address, level)),
            [3, 5, 7, 9]
        );
    }
}
