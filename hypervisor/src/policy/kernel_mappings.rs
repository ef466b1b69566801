//! Kernel page-table integrity (`pagetables = locked`), the pure part: which guest paging-
//! structure pages `LockKernelMappings` locks, the translations it records, the checks on the
//! per-vCPU roots it declares and on the CR3 loads after it. The exits (`exits::page_tables`,
//! `exits::cr3`) make the locked pages read-only in EPT and refuse other CR3 loads.
//!
//! The invariant (property-tested in `kernel_mappings_prop_tests`): a protected linear address
//! (kernel text and rodata, the locked GDT and IDT, the page LSTAR points into) reaches the
//! guest-physical page recorded at lock time from every root a vCPU can have in CR3. It holds
//! because each vCPU can only load its own declared roots, each root is locked (read-only in
//! EPT) with its kernel half, every paging-structure page reachable from a kernel half is
//! read-only, and no lower-half entry of a root points at a locked page: the guest-writable
//! tables below the lower half never translate a kernel-half address.

use crate::guest_paging::walker::{self, PhysicalMemory, WalkError, ADDRESS_MASK};
use crate::guest_paging::walker::{PTE_PAGE_SIZE, PTE_PRESENT, PTE_WRITABLE};

/// Entries per table; the kernel half starts at PML4 entry 256.
pub const ENTRIES: usize = 512;
pub const KERNEL_HALF_FIRST: usize = 256;
const PAGE: u64 = 4096;
const LARGE: u64 = 2 << 20;
/// Accessed (bit 5) and dirty (bit 6): the CPU sets them (SDM Vol. 3A 5.8); ignored when
/// comparing entries.
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// Bits 62:52 of a CR3 value are reserved (bit 63 is the no-flush hint under PCIDE).
const CR3_RESERVED: u64 = 0x7ff0_0000_0000_0000;

/// Most paging-structure pages one lock covers.
pub const MAX_LOCKED: usize = 256;
/// Most protected linear ranges.
pub const MAX_PROTECTED: usize = 12;

/// Reads and updates guest paging structures (the host identity map, a map in tests).
pub trait TableMemory: PhysicalMemory {
    /// Sets `bits` in the entry at `gpa` (atomically: other CPUs may walk it meanwhile).
    fn set_bits(&mut self, gpa: u64, bits: u64) -> Result<(), WalkError>;
}

/// Why a lock or a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed argument (alignment, window bounds, index).
    Invalid,
    /// A table or page the walk needed is not guest RAM.
    Unreadable,
    /// More structure pages or spaces than the fixed tables hold.
    TooMany,
    /// The request would change a locked translation, or names a frame it may not: the
    /// guest-physical address involved (audited, rule `page-table`).
    Denied(u64),
}

impl From<WalkError> for Refusal {
    fn from(_: WalkError) -> Self {
        Self::Unreadable
    }
}

/// A linear range whose translation is recorded: `[va, va + length)` -> `[gpa, ...)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    pub va: u64,
    pub gpa: u64,
    pub length: u64,
}

/// The linear range whose level-1 tables stay writable (kernel stacks), 2 MiB granular.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackWindow {
    pub start: u64,
    pub length: u64,
}

impl StackWindow {
    /// `None` unless 2 MiB aligned, canonical, in the kernel half and not wrapping.
    pub fn new(start: u64, length: u64) -> Option<Self> {
        let end = start.checked_add(length)?;
        let aligned = start.is_multiple_of(LARGE) && length.is_multiple_of(LARGE);
        let kernel_half = length == 0 || (start >> 47 == 0x1ffff && walker::is_canonical(end - 1));
        (aligned && kernel_half).then_some(Self { start, length })
    }

    pub fn overlaps(&self, va: u64, length: u64) -> bool {
        self.length != 0 && va < self.start + self.length && self.start < va + length
    }
}

/// The structure pages a lock covers: every table reachable from the kernel halves, except
/// level-1 tables used only inside the stack window.
#[derive(Clone, Debug, Default)]
pub struct StructurePages(heapless::Vec<u64, MAX_LOCKED>);

impl StructurePages {
    pub fn contains(&self, gpa: u64) -> bool {
        self.0.contains(&(gpa & !(PAGE - 1)))
    }

    pub fn frames(&self) -> &[u64] {
        &self.0
    }
}

/// Adds `value` to `set` unless it is there: true if it was new; a full set refuses.
fn add_new<const N: usize>(set: &mut heapless::Vec<u64, N>, value: u64) -> Result<bool, Refusal> {
    if set.contains(&value) {
        return Ok(false);
    }
    set.push(value).map_err(|_| Refusal::TooMany)?;
    Ok(true)
}

/// Collects the structure pages reachable from the kernel half of each root (the roots
/// included), and sets the accessed bit of every present entry in them and the dirty bit of
/// every writable leaf, so the CPU never needs to write a locked page.
pub fn collect_and_preset(
    memory: &mut impl TableMemory,
    roots: &[u64],
    window: StackWindow,
) -> Result<StructurePages, Refusal> {
    let mut locked = StructurePages::default();
    let mut walked = heapless::Vec::new();
    for &root in roots {
        add_new(&mut locked.0, root & ADDRESS_MASK)?;
        let mut tables = Tables {
            locked: &mut locked,
            walked: &mut walked,
        };
        walk(memory, &mut tables, window, root & ADDRESS_MASK, 4, 0)?;
    }
    Ok(locked)
}

/// What a walk fills in.
struct Tables<'a> {
    locked: &'a mut StructurePages,
    /// Tables walked, as (table, level, inside the window) keys: a page linked at two levels
    /// (or inside and outside the window) is walked once per way, so every table any of its
    /// readings reaches is locked; the keys are finite, so the walk ends.
    walked: &'a mut heapless::Vec<u64, { 2 * MAX_LOCKED }>,
}

/// Walks the table at `level` (4 = the root, kernel half only) covering linear addresses
/// from `base`.
fn walk(
    memory: &mut impl TableMemory,
    tables: &mut Tables<'_>,
    window: StackWindow,
    table: u64,
    level: u32,
    base: u64,
) -> Result<(), Refusal> {
    let in_window = level == 1
        && window.length != 0
        && (window.start..window.start + window.length).contains(&base);
    // A level-1 table in the window is not locked (but a page reached both ways is: `add`
    // only ever adds). A table reached again the same way is not walked again. The caller
    // adds each root and has it walked even if it was reached before.
    if level < 4 && !in_window {
        add_new(&mut tables.locked.0, table)?;
    }
    let key = table | u64::from(level) | u64::from(in_window) << 3;
    if level < 4 && !add_new(tables.walked, key)? {
        return Ok(());
    }
    let first = if level == 4 { KERNEL_HALF_FIRST } else { 0 };
    for index in first..ENTRIES {
        let gpa = table + index as u64 * 8;
        let entry = memory.read_u64(gpa)?;
        if entry & PTE_PRESENT == 0 {
            continue;
        }
        if level == 4 && entry & PTE_PAGE_SIZE != 0 {
            return Err(Refusal::Invalid); // reserved in a PML4 entry
        }
        let leaf = level == 1 || (level < 4 && entry & PTE_PAGE_SIZE != 0);
        if !in_window {
            let writable_leaf = leaf && entry & PTE_WRITABLE != 0;
            memory.set_bits(gpa, ACCESSED | if writable_leaf { DIRTY } else { 0 })?;
        }
        if !leaf {
            // The child's linear base, sign-extended from bit 47 (the kernel half).
            let va = base + ((index as u64) << (12 + 9 * (level - 1)));
            let (next, child) = (entry & ADDRESS_MASK, ((va << 16) as i64 >> 16) as u64);
            walk(memory, tables, window, next, level - 1, child)?;
        }
    }
    Ok(())
}

/// Entries 256-511 of the root at `root`, accessed and dirty bits cleared.
pub fn kernel_half(memory: &impl PhysicalMemory, root: u64) -> Result<[u64; 256], Refusal> {
    let mut half = [0; 256];
    for (slot, index) in half.iter_mut().zip(KERNEL_HALF_FIRST..ENTRIES) {
        *slot = memory.read_u64((root & ADDRESS_MASK) + index as u64 * 8)? & !(ACCESSED | DIRTY);
    }
    Ok(half)
}

/// Checks that every page of `range` translates through `root` to the recorded frame, or
/// (if `absent_ok`: the KPTI template, which maps little of the kernel) is not mapped there.
pub fn translates_as_recorded(
    memory: &impl PhysicalMemory,
    root: u64,
    range: &Protected,
    absent_ok: bool,
) -> Result<(), Refusal> {
    for offset in (0..range.length).step_by(PAGE as usize) {
        match walker::translate(memory, root, 0, range.va + offset) {
            Ok(m) if m.gpa != range.gpa + offset => return Err(Refusal::Denied(m.gpa)),
            Err(WalkError::NotPresent { .. }) if absent_ok => {}
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The roots one vCPU may load once the tables are locked: its kernel-mode CR3 value and,
/// under KPTI, its user-mode one (0: none). At a load only bits 51:12 name the root; the PCID
/// and bit 63 are the kernel's business.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRoots {
    pub kernel_cr3: u64,
    pub user_cr3: u64,
}

impl VcpuRoots {
    pub fn kernel_root(&self) -> u64 {
        self.kernel_cr3 & ADDRESS_MASK
    }

    pub fn user_root(&self) -> Option<u64> {
        (self.user_cr3 != 0).then_some(self.user_cr3 & ADDRESS_MASK)
    }

    /// The root tables (addresses): the kernel-mode root, then the user-mode one if any.
    pub fn roots(&self) -> impl Iterator<Item = u64> {
        [Some(self.kernel_root()), self.user_root()]
            .into_iter()
            .flatten()
    }

    /// True if a MOV to CR3 of `value` loads one of these roots (reserved bits clear).
    pub fn may_load(&self, value: u64) -> bool {
        value & CR3_RESERVED == 0 && self.roots().any(|root| root == value & ADDRESS_MASK)
    }

    /// The CR3-target values (SDM Vol. 3C 26.6.7): each declared value without and with bit
    /// 63 (the no-flush hint under CR4.PCIDE), kernel mode first.
    pub fn targets(&self) -> heapless::Vec<u64, 4> {
        let values = [
            Some(self.kernel_cr3),
            (self.user_cr3 != 0).then_some(self.user_cr3),
        ];
        let variants = |value| [value & !CR3_NO_FLUSH, value | CR3_NO_FLUSH];
        values.into_iter().flatten().flat_map(variants).collect()
    }
}

/// Bit 63 of a MOV to CR3 under CR4.PCIDE (SDM Vol. 3A 4.10.4.1).
const CR3_NO_FLUSH: u64 = 1 << 63;

/// Checks the declared roots before anything is locked: no reserved CR3 bits, every root a
/// frame `plain_ram` accepts, and no frame declared twice (by one vCPU or two).
pub fn check_declared(
    declared: &[VcpuRoots],
    plain_ram: &impl Fn(u64) -> bool,
) -> Result<(), Refusal> {
    let mut seen = heapless::Vec::<u64, { 2 * MAX_VCPUS }>::new();
    for roots in declared {
        for cr3 in [roots.kernel_cr3, roots.user_cr3] {
            if cr3 & CR3_RESERVED != 0 {
                return Err(Refusal::Invalid);
            }
        }
        for root in roots.roots() {
            if !plain_ram(root) || !add_new(&mut seen, root)? {
                return Err(Refusal::Denied(root));
            }
        }
    }
    Ok(())
}

/// Checks a locked root's lower half (entries 0-255, fixed now that the root is read-only):
/// no entry maps a large page (reserved in a PML4 entry) or points at a locked page (a table
/// of the kernel half, or a root), so the tables below stay the guest's and never translate
/// a kernel-half address; sets the accessed bit of each present entry (the CPU would write
/// it, SDM Vol. 3A 4.8).
pub fn check_lower_half(
    memory: &mut impl TableMemory,
    root: u64,
    locked: &StructurePages,
) -> Result<(), Refusal> {
    for index in 0..KERNEL_HALF_FIRST {
        let gpa = (root & ADDRESS_MASK) + index as u64 * 8;
        let entry = memory.read_u64(gpa)?;
        if entry & PTE_PRESENT == 0 {
            continue;
        }
        if entry & PTE_PAGE_SIZE != 0 || locked.contains(entry & ADDRESS_MASK) {
            return Err(Refusal::Denied(entry & ADDRESS_MASK));
        }
        memory.set_bits(gpa, ACCESSED)?;
    }
    Ok(())
}

/// Most vCPUs whose roots one lock declares.
pub const MAX_VCPUS: usize = rampart_boot_info::MAX_CPUS;

/// What `LockKernelMappings` left: the locked pages (every root included) and each vCPU's
/// roots, by vCPU slot.
#[derive(Clone, Debug)]
pub struct LockedRoots {
    pub locked: StructurePages,
    pub vcpus: [Option<VcpuRoots>; MAX_VCPUS],
}

impl LockedRoots {
    /// True if the guest may not write `gpa`'s page: a locked structure page or a root.
    pub fn is_protected_frame(&self, gpa: u64) -> bool {
        self.locked.contains(gpa & ADDRESS_MASK)
    }

    /// A MOV to CR3 of `value` on vCPU `vcpu`: allowed only for that vCPU's own roots.
    pub fn may_load(&self, vcpu: usize, value: u64) -> bool {
        let roots = self.vcpus.get(vcpu).copied().flatten();
        roots.is_some_and(|r| r.may_load(value))
    }
}

#[cfg(test)]
#[path = "kernel_mappings_tests.rs"]
pub(super) mod tests;
