//! EPT paging-structure entries (SDM Vol. 3C 29.3.2, Tables 29-1 to 29-6).

use core::fmt;

/// Bits 5:3 of a leaf entry: EPT memory type (29.3.7).
const MEMORY_TYPE_SHIFT: u32 = 3;
/// Bit 7 of a PDPTE/PDE: the entry maps a 1 GiB / 2 MiB page instead of a table.
pub const LARGE_PAGE: u64 = 1 << 7;
/// Bits 51:12: physical address of the page or next table.
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Bit 10 of an EPT entry: execute for user-mode linear addresses, with mode-based execute
/// control (secondary control bit 22, SDM Vol. 3C 29.3.2); ignored without it.
const USER_EXECUTE_BIT: u64 = 1 << 10;

bitflags::bitflags! {
    /// Access rights of a guest-physical page: bits 2:0 of an EPT entry, read, write and
    /// execute (supervisor-mode execute with MBEC), and bit 10 as `USER_EXECUTE` (execute for
    /// user-mode linear addresses with MBEC).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Permissions: u8 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const EXECUTE = 1 << 2;
        const USER_EXECUTE = 1 << 3;
        /// Program text under MBEC: readable, executable by user-mode linear addresses only.
        const READ_USER_EXECUTE = Self::READ.bits() | Self::USER_EXECUTE.bits();
        const READ_WRITE = Self::READ.bits() | Self::WRITE.bits();
        const READ_EXECUTE = Self::READ.bits() | Self::EXECUTE.bits();
        const EXECUTE_ONLY = Self::EXECUTE.bits();
        const ALL = Self::READ_WRITE.bits() | Self::EXECUTE.bits();
    }
}

impl Permissions {
    /// The rights in bits 2:0 and 10 of an EPT entry.
    pub const fn from_entry(entry: u64) -> Self {
        let user = if entry & USER_EXECUTE_BIT != 0 {
            Self::USER_EXECUTE.bits()
        } else {
            0
        };
        Self::from_bits_truncate((entry & 0b111) as u8 | user)
    }

    /// Bits 2:0 and 10 of an EPT entry with these rights.
    pub const fn to_entry(self) -> u64 {
        let user = if self.contains(Self::USER_EXECUTE) {
            USER_EXECUTE_BIT
        } else {
            0
        };
        (self.bits() & 0b111) as u64 | user
    }
    pub const fn readable(self) -> bool {
        self.contains(Self::READ)
    }
    pub const fn writable(self) -> bool {
        self.contains(Self::WRITE)
    }
    /// Executable in any mode (supervisor, or user-mode linear addresses with MBEC).
    pub const fn executable(self) -> bool {
        self.intersects(Self::EXECUTE.union(Self::USER_EXECUTE))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on, ch| if on { ch } else { '-' };
        let execute = match (
            self.contains(Self::EXECUTE),
            self.contains(Self::USER_EXECUTE),
        ) {
            (true, true) => "xu",
            (true, false) => "x",
            (false, true) => "u",
            (false, false) => "-",
        };
        write!(
            f,
            "{}{}{execute}",
            c(self.readable(), 'r'),
            c(self.writable(), 'w'),
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
    permissions.to_entry() | ((memory_type as u64) << MEMORY_TYPE_SHIFT)
}

/// A leaf entry at `level` (1 = PT; 2 and 3 map large pages) mapping `address`, aligned to its
/// page size, with these attributes.
pub const fn leaf(address: u64, attributes: u64, level: u32) -> u64 {
    let large = if level > 1 { LARGE_PAGE } else { 0 };
    (address & ADDRESS_MASK) | attributes | large
}

/// A non-leaf entry pointing to the table at `address`: all rights, user-mode execute
/// included (ANDed over the walk like the others under MBEC, ignored without), so leaves decide.
pub const fn table(address: u64) -> u64 {
    (address & ADDRESS_MASK) | Permissions::ALL.union(Permissions::USER_EXECUTE).to_entry()
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
        assert_eq!(format!("{:?}", Permissions::READ_USER_EXECUTE), "r-u");
        assert_eq!(format!("{:?}", Permissions::empty()), "---");
    }

    /// Mode-based execute control (SDM Vol. 3C 29.3.2): bit 2 executes supervisor-mode
    /// linear addresses, bit 10 user-mode ones; tables carry both so leaves decide.
    #[test]
    fn user_execute_is_bit_10() {
        let program_text = attributes(Permissions::READ_USER_EXECUTE, MemoryType::WriteBack);
        assert_eq!(
            program_text & 0b111,
            0b001,
            "readable, not supervisor-executable"
        );
        assert_ne!(program_text & (1 << 10), 0, "user-executable");
        let e = leaf(0x40_1000, program_text, 1);
        assert_eq!(Permissions::from_entry(e), Permissions::READ_USER_EXECUTE);
        assert!(Permissions::READ_USER_EXECUTE.executable());
        let kernel_text = attributes(Permissions::EXECUTE_ONLY, MemoryType::WriteBack);
        assert_eq!(
            kernel_text & (1 << 10),
            0,
            "kernel text is never user-executable"
        );
        assert_eq!(table(0x5000) & 0b111, 0b111);
        assert_ne!(table(0x5000) & (1 << 10), 0);
        assert_eq!(
            Permissions::from_entry(table(0x5000)),
            Permissions::ALL | Permissions::USER_EXECUTE
        );
    }
}
