//! Guest-virtual to guest-physical translation: a walk of the guest's 4-level page tables
//! from guest CR3 (SDM Vol. 3A 5.5 "4-Level Paging and 5-Level Paging", Tables 5-15 to 5-20).
//!
//! Pure logic: page-table entries are read through [`PhysicalMemory`], which refuses
//! addresses the guest may not reach (the hypervisor's ranges, holes in EPT), so a walk over
//! a hostile or broken table ends in an error, never in a fault.

/// Bit 0 of every paging-structure entry: present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Bit 1: writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Bit 2: user-mode accessible.
pub const PTE_USER: u64 = 1 << 2;
/// Bit 7 of a PDPTE or PDE: maps a 1 GiB or 2 MiB page.
pub const PTE_PAGE_SIZE: u64 = 1 << 7;
/// Bits 51:12: the physical address of the next table or 4 KiB page (and of CR3's table).
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// CR4.LA57 (bit 12): 5-level paging, which this walker does not implement.
pub const CR4_LA57: u64 = 1 << 12;

const PAGE_4K: u64 = 1 << 12;
const ENTRY_BYTES: u64 = 8;

/// Why an address cannot be translated or accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// Bits 63:47 of the address are not all equal (5.3.1: canonical addressing).
    #[error("non-canonical address {0:#x}")]
    NonCanonical(u64),
    /// The entry at this level (4 = PML4 .. 1 = PT) is not present.
    #[error("not present at level {level}")]
    NotPresent { level: u8 },
    /// The guest-physical address lies in the hypervisor's own memory.
    #[error("GPA {0:#x} belongs to the hypervisor")]
    HypervisorMemory(u64),
    /// The guest-physical address is not mapped in EPT.
    #[error("GPA {0:#x} is not mapped in EPT")]
    NotInEpt(u64),
    /// The guest-physical address is device memory (MMIO), which the hypervisor never reads or
    /// writes on anyone's behalf (an 8-byte access to the local APIC page aborts Bochs, and its
    /// effect on hardware is undefined).
    #[error("GPA {0:#x} is device memory, not RAM")]
    DeviceMemory(u64),
    /// The guest uses 5-level paging.
    #[error("5-level paging is not supported")]
    FiveLevelPaging,
}

/// Reads guest-physical memory for the walker, refusing what the guest cannot reach.
pub trait PhysicalMemory {
    /// The 8-byte little-endian value at `gpa` (8-byte aligned).
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError>;
}

/// Where a guest-virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub gpa: u64,
    /// 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    /// Writable and user bits ANDed over all levels.
    pub writable: bool,
    pub user: bool,
}

impl Mapping {
    /// Bytes from the address to the end of its page (the GDB stub's reads).
    #[cfg(any(test, feature = "gdb", feature = "internals"))]
    pub fn bytes_to_page_end(&self) -> u64 {
        self.page_size - (self.gpa & (self.page_size - 1))
    }
}

/// True if bits 63:47 of `address` are copies of bit 47.
pub fn is_canonical(address: u64) -> bool {
    let top = (address as i64) >> 47;
    top == 0 || top == -1
}

/// Index of `address` in the table at `level` (4 = PML4 .. 1 = PT).
fn index(address: u64, level: u8) -> u64 {
    (address >> (12 + 9 * (u32::from(level) - 1))) & 0x1ff
}

/// Translates `gva` through the tables at `cr3` (4-level paging; `cr4` only to reject LA57).
pub fn translate(
    memory: &impl PhysicalMemory,
    cr3: u64,
    cr4: u64,
    gva: u64,
) -> Result<Mapping, WalkError> {
    if cr4 & CR4_LA57 != 0 {
        return Err(WalkError::FiveLevelPaging);
    }
    if !is_canonical(gva) {
        return Err(WalkError::NonCanonical(gva));
    }
    let mut table = cr3 & ADDRESS_MASK;
    let (mut writable, mut user) = (true, true);
    for level in (1..=4u8).rev() {
        let entry = memory.read_u64(table + index(gva, level) * ENTRY_BYTES)?;
        if entry & PTE_PRESENT == 0 {
            return Err(WalkError::NotPresent { level });
        }
        writable &= entry & PTE_WRITABLE != 0;
        user &= entry & PTE_USER != 0;
        let leaf = level == 1 || ((level == 2 || level == 3) && entry & PTE_PAGE_SIZE != 0);
        if leaf {
            let page_size = PAGE_4K << (9 * (u32::from(level) - 1));
            let frame = entry & ADDRESS_MASK & !(page_size - 1);
            return Ok(Mapping {
                gpa: frame | (gva & (page_size - 1)),
                page_size,
                writable,
                user,
            });
        }
        table = entry & ADDRESS_MASK;
    }
    Err(WalkError::NotPresent { level: 1 })
}

#[cfg(test)]
#[path = "walker_tests.rs"]
mod tests;
