//! EPT paging-structure entries (SDM Vol. 3C 29.3.2, Tables 29-1 to 29-6).

use core::fmt;

/// Bits 5:3 of a leaf entry: EPT memory type (29.3.7).
const MEMORY_TYPE_SHIFT: u32 = 3;
/// Bit 7 of a PDPTE/PDE: the entry maps a 1 GiB / 2 MiB page instead of a table.
pub const LARGE_PAGE: u64 = 1 << 7;
/// Bits 51:12: physical address of the page or next table.
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

bitflags::bitflags! {
    /// Access rights of a guest-physical page: bits 2:0 of an EPT entry, read, write and
    /// execute (supervisor-mode execute with MBEC).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Permissions: u8 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const EXECUTE = 1 << 2;
        const READ_WRITE = Self::READ.bits() | Self::WRITE.bits();
        const READ_EXECUTE = Self::READ.bits() | Self::EXECUTE.bits();
        const EXECUTE_ONLY = Self::EXECUTE.bits();
        const ALL = Self::READ_WRITE.bits() | Self::EXECUTE.bits();
    }
}

impl Permissions {
    pub const NONE: Self = Self::empty();

    /// The rights in bits 2:0 of an EPT entry (or of an EPT-violation qualification's
    /// bits 5:3 shifted down).
    pub const fn from_entry(entry: u64) -> Self {
        Self::from_bits_truncate(entry as u8)
    }
    pub const fn readable(self) -> bool {
        self.contains(Self::READ)
    }
    pub const fn writable(self) -> bool {
        self.contains(Self::WRITE)
    }
    pub const fn executable(self) -> bool {
        self.contains(Self::EXECUTE)
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on, ch| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.readable(), 'r'),
            c(self.writable(), 'w'),
            c(self.executable(), 'x')
        )
    }
}

/// EPT memory types used by Rampart (29.3.7: with EPT on, this type replaces the MTRRs').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemoryType {
    Uncacheable = 0,
    WriteBack = 6,
}

impl MemoryType {
    pub fn from_entry(entry: u64) -> Option<Self> {
        match (entry >> MEMORY_TYPE_SHIFT) & 0b111 {
            0 => Some(Self::Uncacheable),
            6 => Some(Self::WriteBack),
            _ => None,
        }
    }
}

/// Bits 5:0 of a leaf entry with these rights and memory type.
pub const fn attributes(permissions: Permissions, memory_type: MemoryType) -> u64 {
    permissions.bits() as u64 | ((memory_type as u64) << MEMORY_TYPE_SHIFT)
}

/// A leaf entry at `level` (1 = PT; 2 and 3 map large pages) mapping `address`, aligned to its
/// page size, with these attributes.
pub const fn leaf(address: u64, attributes: u64, level: u32) -> u64 {
    let large = if level > 1 { LARGE_PAGE } else { 0 };
    (address & ADDRESS_MASK) | attributes | large
}

/// A non-leaf entry pointing to the table at `address`: all rights, so leaves decide.
pub const fn table(address: u64) -> u64 {
    (address & ADDRESS_MASK) | Permissions::ALL.bits() as u64
}

/// True if the entry maps anything (29.3.2: an entry with bits 2:0 clear is not present).
pub const fn is_present(entry: u64) -> bool {
    !Permissions::from_entry(entry).is_empty()
}

/// EPT pointer (24.6.11): memory type of the paging structures, page-walk length 4 (encoded
/// as 3 in bits 5:3), and the PML4 table's address.
pub const fn eptp(pml4: u64, memory_type: MemoryType) -> u64 {
    const PAGE_WALK_LENGTH_4: u64 = 3 << 3;
    (pml4 & ADDRESS_MASK) | PAGE_WALK_LENGTH_4 | memory_type as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trips() {
        let e = leaf(
            0x20_0000,
            attributes(Permissions::READ_EXECUTE, MemoryType::WriteBack),
            2,
        );
        assert_eq!(e & ADDRESS_MASK, 0x20_0000);
        assert_eq!(Permissions::from_entry(e), Permissions::READ_EXECUTE);
        assert_eq!(MemoryType::from_entry(e), Some(MemoryType::WriteBack));
        assert!(e & LARGE_PAGE != 0);
    }

    #[test]
    fn eptp_encodes_walk_length_and_type() {
        assert_eq!(
            eptp(0x1234_5000, MemoryType::WriteBack),
            0x1234_5000 | 0x18 | 6
        );
    }

    #[test]
    fn permissions_debug_reads_like_ls() {
        assert_eq!(format!("{:?}", Permissions::READ_EXECUTE), "r-x");
        assert_eq!(format!("{:?}", Permissions::NONE), "---");
    }
}
