//! What the guest has locked, in one place: the answer to "what can the guest lock, and has
//! it?" (`hypervisor/DESIGN.md` invariants 5-7). Every lock is one-way: set by its hypercall
//! or by the guest's first write of a pinnable bit, never cleared. The exit handlers that take
//! the locks (`exits::msr`, `cr_access`, `descriptor_tables`, `page_tables`) and those that
//! enforce them (`exits::policy`, `cr3`, `smp::vcpu_start`, the shootdown) read them here,
//! downward. [`vmcs`] applies them to a vCPU's VMCS.
//!
//! | lock | taken by | enforced by |
//! |---|---|---|
//! | SYSCALL/SYSENTER MSRs | `LockSyscallMsrs` | MSR writes refused (`exits::msr`) |
//! | CR4 UMIP/SMEP/SMAP | the guest setting the bit | CR4 guest/host mask (`cr_access`) |
//! | descriptor tables | `LockDescriptorTables` | table exiting, pages EPT read-only |
//! | kernel page tables | `LockKernelMappings` | tables EPT read-only, checked CR3 loads |

pub mod vmcs;

use crate::policy::kernel_mappings::LockedRoots;
use crate::policy::pinned::CR4_PINNABLE;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static SYSCALL_MSRS: AtomicBool = AtomicBool::new(false);
/// CR4 bits the guest has set and may never clear again.
static PINNED_CR4: AtomicU64 = AtomicU64::new(0);
/// The guest-physical frames made read-only by the descriptor-table lock (GDT, IDT, and the
/// TSS with `DescriptorLock::TSS`): set once, when `LockDescriptorTables` succeeds.
static TABLE_FRAMES: spin::Once<TableFrames> = spin::Once::new();
/// Boot config `pagetables = locked`.
static PAGE_TABLE_POLICY: AtomicBool = AtomicBool::new(false);
/// The locked pages and each vCPU's roots (set once, then only read: CR3 exits take no lock).
static PAGE_TABLES: spin::Once<LockedRoots> = spin::Once::new();

/// The pages of the GDT, IDT and TSS: at most 17 per table (a GDT or IDT is at most 64 KiB).
pub type TableFrames = heapless::Vec<u64, { 3 * 17 }>;
const PAGE: u64 = 4096;

/// Locks the SYSCALL/SYSENTER MSRs (one-way).
pub fn lock_syscall_msrs() {
    SYSCALL_MSRS.store(true, Ordering::SeqCst);
}

/// True once `LockSyscallMsrs` succeeded.
pub fn syscall_msrs_locked() -> bool {
    SYSCALL_MSRS.load(Ordering::SeqCst)
}

/// Pins the pinnable bits of a CR4 value the guest loaded.
pub fn pin_cr4(value: u64) {
    PINNED_CR4.fetch_or(value & CR4_PINNABLE, Ordering::SeqCst);
}

/// The CR4 bits pinned so far (on any vCPU).
pub fn pinned_cr4() -> u64 {
    PINNED_CR4.load(Ordering::SeqCst)
}

/// Records the descriptor-table pages made read-only: the lock is taken (the first call
/// counts; the lock is one-way).
pub fn lock_descriptor_tables(frames: TableFrames) {
    TABLE_FRAMES.call_once(|| frames);
}

/// True once `LockDescriptorTables` succeeded.
pub fn descriptor_tables_locked() -> bool {
    TABLE_FRAMES.is_completed()
}

/// True if `gpa` lies in a descriptor-table page the lock made read-only.
pub fn is_locked_table_page(gpa: u64) -> bool {
    TABLE_FRAMES
        .get()
        .is_some_and(|frames| frames.contains(&(gpa & !(PAGE - 1))))
}

/// Records the boot policy (before the first guest instruction).
pub fn set_page_table_policy(lock_page_tables: bool) {
    PAGE_TABLE_POLICY.store(lock_page_tables, Ordering::SeqCst);
}

/// Boot config `pagetables = locked`: `LockKernelMappings` may be asked for.
pub fn page_table_policy() -> bool {
    PAGE_TABLE_POLICY.load(Ordering::SeqCst)
}

/// Records the kernel's locked page tables and every vCPU's roots (the first call counts).
pub fn lock_page_tables(roots: LockedRoots) {
    PAGE_TABLES.call_once(|| roots);
}

/// The locked page tables, once `LockKernelMappings` succeeded (CR3 loads are checked from
/// then on).
pub fn locked_page_tables() -> Option<&'static LockedRoots> {
    PAGE_TABLES.get()
}

/// True if the guest may not write `gpa`'s page (a locked structure page or a root).
pub fn is_protected_frame(gpa: u64) -> bool {
    PAGE_TABLES
        .get()
        .is_some_and(|lock| lock.is_protected_frame(gpa))
}

/// True if any lock that fixes a vCPU's entry state is taken (descriptor tables or the
/// SYSCALL MSRs): a vCPU started after it must enter on the locked values.
pub fn entry_state_locked() -> bool {
    descriptor_tables_locked() || syscall_msrs_locked()
}
