//! Kernel page-table integrity (`pagetables = locked`), the pure part: which guest paging-
//! structure pages `LockKernelMappings` locks, the translations it records, and the checks
//! on address spaces and root entries the guest asks for later. The exits (`exits::
//! page_tables`) make the locked pages read-only in EPT and check CR3 loads with these.
//!
//! The invariant (property-tested in `kernel_mappings_proptests`): a protected linear address
//! (kernel text and rodata, the locked GDT and IDT, the page LSTAR points into) reaches the
//! guest-physical page recorded at lock time from every root a vCPU can have in CR3. It holds
//! because every paging-structure page on those paths is read-only in EPT (the kernel half
//! of every registered root equals the locked one and points only at locked pages), and CR3
//! can only be loaded with a registered root.

use crate::guest_memory::walker::{self, PhysicalMemory, WalkError, ADDRESS_MASK};
use crate::guest_memory::walker::{PTE_PAGE_SIZE, PTE_PRESENT, PTE_WRITABLE};

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
/// Most registered address spaces at once (the kernel's own included).
pub const MAX_SPACES: usize = 128;
/// Most protected linear ranges.
pub const MAX_PROTECTED: usize = 12;

/// Reads and updates guest paging structures (the host identity map, a map in tests).
pub trait TableMemory: PhysicalMemory {
    /// Sets `bits` in the entry at `gpa` (atomically: other CPUs may walk it meanwhile).
    fn set_bits(&mut self, gpa: u64, bits: u64) -> Result<(), WalkError>;
    /// Writes the entry at `gpa`.
    fn write_u64(&mut self, gpa: u64, value: u64) -> Result<(), WalkError>;
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
    /// A release names no registered space.
    NotRegistered,
    /// A release names a space some vCPU has loaded.
    Busy,
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
#[derive(Clone, Debug)]
pub struct StructurePages {
    frames: [u64; MAX_LOCKED],
    count: usize,
}

impl StructurePages {
    pub const EMPTY: Self = Self {
        frames: [0; MAX_LOCKED],
        count: 0,
    };

    pub fn contains(&self, gpa: u64) -> bool {
        self.frames().contains(&(gpa & !(PAGE - 1)))
    }

    pub fn frames(&self) -> &[u64] {
        &self.frames[..self.count]
    }

    fn add(&mut self, frame: u64) -> Result<bool, Refusal> {
        if self.contains(frame) {
            return Ok(false);
        }
        *self.frames.get_mut(self.count).ok_or(Refusal::TooMany)? = frame;
        self.count += 1;
        Ok(true)
    }
}

/// Collects the structure pages reachable from the kernel half of each root (the roots
/// included), and sets the accessed bit of every present entry in them and the dirty bit of
/// every writable leaf, so the CPU never needs to write a locked page.
pub fn collect_and_preset(
    memory: &mut impl TableMemory,
    roots: &[u64],
    window: StackWindow,
) -> Result<StructurePages, Refusal> {
    let mut locked = StructurePages::EMPTY;
    let mut walked = Walked {
        pairs: [0; MAX_WALKED],
        count: 0,
    };
    for &root in roots {
        locked.add(root & ADDRESS_MASK)?;
        let mut tables = Tables {
            locked: &mut locked,
            walked: &mut walked,
        };
        walk(memory, &mut tables, window, root & ADDRESS_MASK, 4, 0)?;
    }
    Ok(locked)
}

/// Tables walked, as (table, level, inside the window) keys: a page linked at two levels (or
/// inside and outside the window) is walked once per way, so every table any of its readings
/// reaches is locked; the keys are finite, so the walk ends.
struct Walked {
    pairs: [u64; MAX_WALKED],
    count: usize,
}

const MAX_WALKED: usize = 2 * MAX_LOCKED;

impl Walked {
    /// True the first time `table` is reached this way.
    fn first_visit(&mut self, table: u64, level: u32, in_window: bool) -> Result<bool, Refusal> {
        let key = table | u64::from(level) | u64::from(in_window) << 3;
        if self.pairs[..self.count].contains(&key) {
            return Ok(false);
        }
        *self.pairs.get_mut(self.count).ok_or(Refusal::TooMany)? = key;
        self.count += 1;
        Ok(true)
    }
}

/// What a walk fills in.
struct Tables<'a> {
    locked: &'a mut StructurePages,
    walked: &'a mut Walked,
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
        tables.locked.add(table)?;
    }
    if level < 4 && !tables.walked.first_visit(table, level, in_window)? {
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

/// A registered address space: the CR3 values the kernel loads for it (kernel mode, and user
/// mode under KPTI or 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Space {
    pub kernel_cr3: u64,
    pub user_cr3: u64,
}

impl Space {
    pub fn kernel_root(&self) -> u64 {
        self.kernel_cr3 & ADDRESS_MASK
    }

    pub fn user_root(&self) -> Option<u64> {
        (self.user_cr3 != 0).then_some(self.user_cr3 & ADDRESS_MASK)
    }

    /// The space's tables (addresses): the kernel-mode root, then the user-mode one if any.
    pub fn roots(&self) -> impl Iterator<Item = u64> {
        [Some(self.kernel_root()), self.user_root()]
            .into_iter()
            .flatten()
    }
}

/// The locked kernel half and the registered address spaces. What it needs to know about a
/// frame from the rest of the hypervisor is `plain_ram(frame)`: true if the frame is guest RAM
/// the guest may write now (EPT RW-, not measured, not the hypervisor's), the only frames that
/// may become roots or tables of roots.
#[derive(Clone, Debug)]
pub struct Registry {
    pub locked: StructurePages,
    /// The kernel half every kernel-mode root must have, and the KPTI template's.
    pub kernel_half: [u64; 256],
    pub template_half: Option<[u64; 256]>,
    spaces: [Option<Space>; MAX_SPACES],
}

impl Registry {
    /// The state right after a lock whose kernel CR3 value is `kernel_cr3` (space 0).
    pub fn new(
        locked: StructurePages,
        kernel_half: [u64; 256],
        template_half: Option<[u64; 256]>,
        kernel_cr3: u64,
    ) -> Self {
        let mut spaces = [None; MAX_SPACES];
        spaces[0] = Some(Space {
            kernel_cr3,
            user_cr3: 0,
        });
        Self {
            locked,
            kernel_half,
            template_half,
            spaces,
        }
    }

    /// The space that has `root` (an address) as one of its tables.
    pub fn find(&self, root: u64) -> Option<(usize, Space)> {
        let has_root = |s: &Space| s.roots().any(|r| r == root);
        let mut spaces = self.spaces.iter().enumerate();
        spaces.find_map(|(slot, space)| space.filter(has_root).map(|s| (slot, s)))
    }

    /// True if the guest may not write `gpa`'s page: a locked structure page or a root.
    pub fn is_protected_frame(&self, gpa: u64) -> bool {
        let frame = gpa & ADDRESS_MASK;
        self.locked.contains(frame) || self.find(frame).is_some()
    }

    /// Checks a root candidate: plain RAM, not protected, an empty lower half and the
    /// expected upper half.
    fn check_root(
        &self,
        memory: &impl PhysicalMemory,
        plain_ram: &impl Fn(u64) -> bool,
        cr3: u64,
        expected: &[u64; 256],
    ) -> Result<u64, Refusal> {
        if cr3 & CR3_RESERVED != 0 {
            return Err(Refusal::Invalid);
        }
        let root = cr3 & ADDRESS_MASK;
        if self.is_protected_frame(root) || !plain_ram(root) {
            return Err(Refusal::Denied(root));
        }
        for index in 0..KERNEL_HALF_FIRST {
            if memory.read_u64(root + index as u64 * 8)? != 0 {
                return Err(Refusal::Denied(root));
            }
        }
        if kernel_half(memory, root)? != *expected {
            return Err(Refusal::Denied(root));
        }
        Ok(root)
    }

    /// `RegisterAddressSpace`: returns the slot (the roots to make read-only are the space's).
    pub fn register(
        &mut self,
        memory: &impl PhysicalMemory,
        plain_ram: &impl Fn(u64) -> bool,
        space: Space,
    ) -> Result<usize, Refusal> {
        let kernel = self.check_root(memory, plain_ram, space.kernel_cr3, &self.kernel_half)?;
        if space.user_cr3 != 0 {
            let template = self.template_half.ok_or(Refusal::Invalid)?;
            let user = self.check_root(memory, plain_ram, space.user_cr3, &template)?;
            if user == kernel {
                return Err(Refusal::Denied(user));
            }
        }
        let free = self.spaces.iter().position(Option::is_none);
        let slot = free.ok_or(Refusal::TooMany)?;
        self.spaces[slot] = Some(space);
        Ok(slot)
    }

    /// `SetRootEntry`: checks `entry` for lower-half slot `index` of the space whose
    /// kernel-mode root is `root`; returns that space (its roots get the entry).
    pub fn check_root_entry(
        &self,
        plain_ram: &impl Fn(u64) -> bool,
        root: u64,
        index: u64,
        entry: u64,
    ) -> Result<Space, Refusal> {
        let (slot, space) = self.find(root).ok_or(Refusal::Invalid)?;
        if slot == 0 || space.kernel_root() != root {
            return Err(Refusal::Denied(root));
        }
        if index >= KERNEL_HALF_FIRST as u64 {
            return Err(Refusal::Denied(root + index.min(511) * 8));
        }
        let table = entry & ADDRESS_MASK;
        if entry & PTE_PRESENT != 0
            && (entry & PTE_PAGE_SIZE != 0 || self.is_protected_frame(table) || !plain_ram(table))
        {
            return Err(Refusal::Denied(table));
        }
        Ok(space)
    }

    /// `ReleaseAddressSpace`: unregisters the space whose kernel-mode root `cr3` names unless
    /// `loaded` says a vCPU has it loaded. Returns it (its roots become writable again).
    /// Denied: the kernel's own root, or a user-mode root named instead of the kernel-mode one.
    pub fn release(&mut self, cr3: u64, loaded: impl Fn(usize) -> bool) -> Result<Space, Refusal> {
        let root = cr3 & ADDRESS_MASK;
        let (slot, space) = self.find(root).ok_or(Refusal::NotRegistered)?;
        if slot == 0 || space.kernel_root() != root {
            return Err(Refusal::Denied(cr3));
        }
        if loaded(slot) {
            return Err(Refusal::Busy);
        }
        self.spaces[slot] = None;
        Ok(space)
    }

    /// A MOV to CR3 of `value`: the slot of the registered space it loads, if any.
    pub fn cr3_load(&self, value: u64) -> Option<usize> {
        if value & CR3_RESERVED != 0 {
            return None;
        }
        self.find(value & ADDRESS_MASK).map(|(slot, _)| slot)
    }
}

#[cfg(test)]
#[path = "kernel_mappings_tests.rs"]
pub(super) mod tests;
