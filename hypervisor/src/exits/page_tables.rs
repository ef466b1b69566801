//! Kernel page-table integrity under the boot policy `pagetables = locked`: the hypercall
//! `LockKernelMappings` (checks in `policy::kernel_mappings`), the EPT rights it changes, and
//! the blocked writes' rule. CR3 loads are checked in `exits::cr3`.
#![allow(unsafe_code)] // IA32_LSTAR read

use crate::cpus::CpuState::{Running, StartRequested};
use crate::cpus::CPUS;
use crate::ept::entry::Permissions;
use crate::guest_memory::{Gpa, GuestBytes};
use crate::guest_paging::walker::{self, PhysicalMemory, WalkError};
use crate::locks;
use crate::policy::kernel_mappings::{
    self as km, LockedRoots, Protected, Refusal, StackWindow, StructurePages, TableMemory,
    VcpuRoots, MAX_PROTECTED, MAX_VCPUS,
};
use crate::policy::{operations, SegmentKind};
use crate::state;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use rampart_hv_abi::{Access, CpuRoots, HypercallError, HypercallResult, Rule};
use x86::vmx::vmcs::guest;

/// Set once a `LockKernelMappings` with a well-formed table starts: one attempt, one at a
/// time.
static LOCKING: AtomicBool = AtomicBool::new(false);
const PAGE: u64 = 4096;

/// The hypercall result for a refusal; a denial is audited (rule `page-table`).
fn refusal(vmcs: &Vmcs, r: Refusal, detail: u64) -> HypercallError {
    match r {
        Refusal::Invalid => HypercallError::InvalidArgument,
        Refusal::Unreadable | Refusal::TooMany => HypercallError::OutOfRange,
        Refusal::Denied(gpa) => {
            let access = Access::HYPERCALL | Access::WRITE;
            super::resume::block(vmcs, Rule::PageTable, access, 0, gpa, detail);
            HypercallError::Denied
        }
    }
}

/// Guest paging structures through the host's identity map: write-back guest RAM in EPT,
/// outside the hypervisor (`GuestPhysical::check_waiting`).
struct Tables;

impl Tables {
    /// The entry at `gpa` (8 aligned bytes of checked guest RAM), shared with the guest.
    fn entry(gpa: u64) -> Result<&'static AtomicU64, WalkError> {
        GuestBytes::checked(Gpa(gpa), 8, true)?
            .as_atomic_u64()
            .ok_or(WalkError::NotInEpt(gpa))
    }
}

impl PhysicalMemory for Tables {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        Ok(Self::entry(gpa)?.load(Ordering::SeqCst))
    }
}

impl TableMemory for Tables {
    fn set_bits(&mut self, gpa: u64, bits: u64) -> Result<(), WalkError> {
        Self::entry(gpa)?.fetch_or(bits, Ordering::SeqCst);
        Ok(())
    }
}

/// Which frames may become roots: guest RAM the guest may write now (EPT RW- write-back),
/// outside the kernel image, the initrd and the hypervisor.
fn is_plain_ram(frame: u64) -> bool {
    let layout = &state::get().layout;
    let measured = layout.in_hypervisor(frame)
        || layout.in_initrd(frame)
        || layout.segment_at(frame).is_some();
    let rw_ram = || {
        let rights = |ept: &mut _| operations::ram_page(ept, layout, frame);
        state::EPT.lock().as_mut().map(rights) == Some(Ok(Permissions::READ_WRITE))
    };
    !measured && rw_ram()
}

/// Copies `LockKernelMappings`' table out of guest memory (before anything is checked: the
/// guest may rewrite it meanwhile) and sorts it by vCPU slot. Every vCPU started (running or
/// about to) needs exactly one entry, and no other CPU may have one.
fn declared_roots(table: u64, count: u64) -> Result<[Option<VcpuRoots>; MAX_VCPUS], Refusal> {
    if !table.is_multiple_of(8) || count == 0 || count > MAX_VCPUS as u64 {
        return Err(Refusal::Invalid);
    }
    let started = |slot: usize| matches!(CPUS[slot].state(), Running | StartRequested);
    let mut by_slot = [None; MAX_VCPUS];
    for entry in 0..count {
        let word = |n: u64| Tables.read_u64(table + entry * CpuRoots::SIZE + n * 8);
        let (apic_id, kernel_cr3, user_cr3) = (word(0)?, word(1)?, word(2)?);
        let apic_id = u32::try_from(apic_id).map_err(|_| Refusal::Invalid)?;
        let slot = crate::cpus::index_of(apic_id).ok_or(Refusal::Invalid)?;
        if !started(slot) || by_slot[slot].is_some() {
            return Err(Refusal::Invalid);
        }
        by_slot[slot] = Some(VcpuRoots {
            kernel_cr3,
            user_cr3,
        });
    }
    if (0..MAX_VCPUS).any(|slot| started(slot) && by_slot[slot].is_none()) {
        return Err(Refusal::Invalid);
    }
    Ok(by_slot)
}

/// The translations `LockKernelMappings` records: text and rodata from the measured ELF
/// (p_vaddr -> p_paddr), the current GDT and IDT pages, the page LSTAR points into.
fn protected_ranges(vmcs: &Vmcs) -> Result<heapless::Vec<Protected, MAX_PROTECTED>, Refusal> {
    let mut out = heapless::Vec::new();
    let mut push = |va: u64, gpa: u64, length: u64| {
        let range = Protected { va, gpa, length };
        out.push(range).map_err(|_| Refusal::TooMany)
    };
    let layout = &state::get().layout;
    for segment in layout.segments.iter().flatten() {
        if matches!(segment.kind, SegmentKind::Text | SegmentKind::ReadOnly) {
            let gpa = segment.range.start & !(PAGE - 1);
            let end = segment.range.end().next_multiple_of(PAGE);
            push(segment.vaddr & !(PAGE - 1), gpa, end - gpa)?;
        }
    }
    let cr3 = vmcs.get(guest::CR3);
    // SAFETY: LSTAR exists on every 64-bit CPU; VMX does not switch it, so this is the
    // guest's value (locked by `LockSyscallMsrs` before this hypercall is accepted).
    let lstar = unsafe { x86::msr::rdmsr(x86::msr::IA32_LSTAR) };
    let tables = [
        (vmcs.get(guest::GDTR_BASE), vmcs.get(guest::GDTR_LIMIT) + 1),
        (vmcs.get(guest::IDTR_BASE), vmcs.get(guest::IDTR_LIMIT) + 1),
        (lstar, 1),
    ];
    for (base, length) in tables {
        for page in (base & !(PAGE - 1)..base + length).step_by(PAGE as usize) {
            let mapping = walker::translate(&Tables, cr3, 0, page)?;
            push(page, mapping.gpa & !(PAGE - 1), PAGE)?;
        }
    }
    let lstar_gpa = walker::translate(&Tables, cr3, 0, lstar)?.gpa;
    if layout.segment_at(lstar_gpa).map(|s| s.kind) != Some(SegmentKind::Text) {
        return Err(Refusal::Denied(lstar));
    }
    Ok(out)
}

/// Makes each frame read-only in EPT (the caller flushes).
fn protect_frames(frames: impl IntoIterator<Item = u64>) -> Result<(), Refusal> {
    let layout = &state::get().layout;
    let mut guard = state::EPT.lock();
    let ept = guard.as_mut().ok_or(Refusal::Invalid)?;
    for frame in frames {
        operations::protect_range(ept, layout, frame, PAGE, Permissions::READ)
            .map_err(|_| Refusal::Denied(frame))?;
    }
    Ok(())
}

/// Walks the kernel halves of `roots`, makes what it found read-only, shoots down and walks
/// again: the lock is taken once a walk finds no page that was not already read-only (no
/// table changed between walk and lock).
fn lock_tables(roots: &[u64], window: StackWindow) -> Result<StructurePages, Refusal> {
    let mut locked = km::collect_and_preset(&mut Tables, roots, window)?;
    for _ in 0..3 {
        protect_frames(locked.frames().iter().copied())?;
        crate::smp::shootdown::tighten_all();
        let again = km::collect_and_preset(&mut Tables, roots, window)?;
        if again.frames().iter().all(|&f| locked.contains(f)) {
            return Ok(again);
        }
        locked = again;
    }
    Err(Refusal::Denied(roots[0]))
}

/// `LockKernelMappings`: the stack window `[window_start, + window_length)`, and the per-vCPU
/// roots table at GPA `table` with `count` entries (copied once before anything is decided).
pub fn lock(
    vmcs: &Vmcs,
    window_start: u64,
    window_length: u64,
    table: u64,
    count: u64,
) -> HypercallResult {
    if !locks::page_table_policy() {
        return Err(HypercallError::NotSupported);
    }
    let caps = &state::get().caps;
    let ready = locks::locked_page_tables().is_none()
        && locks::descriptor_tables_locked()
        && locks::syscall_msrs_locked()
        && super::cr3::can_exit(caps);
    let window = StackWindow::new(window_start, window_length)
        .filter(|_| ready)
        .ok_or(HypercallError::InvalidArgument)?;
    // A malformed table is refused before anything changes, and the lock may still be asked
    // for; from here on one attempt only (it may leave pages read-only if refused).
    let vcpus = declared_roots(table, count).map_err(|r| refusal(vmcs, r, window_start))?;
    if LOCKING.swap(true, Ordering::SeqCst) {
        return Err(HypercallError::InvalidArgument);
    }
    let (lock, ranges) = lock_and_check(vmcs, vcpus, window).map_err(|r| {
        crate::smp::shootdown::tighten_all();
        refusal(vmcs, r, window_start)
    })?;
    let pages = lock.locked.frames().len();
    let vcpus = lock.vcpus.iter().flatten().count();
    locks::lock_page_tables(lock);
    locks::vmcs::apply_to_current_vmcs();
    // Every other vCPU drops stale EPT translations and starts checking CR3 loads.
    crate::smp::shootdown::tighten_all();
    log::info!("page tables locked: {pages} paging-structure pages read-only ({vcpus} vCPUs' roots), {ranges} protected ranges recorded, stack window {:#x}+{:#x}, CR3 loads checked ({} CR3-target values)",
        window.start,
        window.length,
        caps.cr3_target_count()
    );
    Ok(0)
}

/// Locks every declared root and the kernel-half tables they reach, then checks (only now that
/// no vCPU can change them) that the roots agree and keep the recorded translations.
fn lock_and_check(
    vmcs: &Vmcs,
    vcpus: [Option<VcpuRoots>; MAX_VCPUS],
    window: StackWindow,
) -> Result<(LockedRoots, usize), Refusal> {
    let cr3 = vmcs.get(guest::CR3);
    let declared = || vcpus.iter().flatten();
    let list: heapless::Vec<VcpuRoots, MAX_VCPUS> = declared().copied().collect();
    let roots: heapless::Vec<u64, { 2 * MAX_VCPUS }> = declared().flat_map(|v| v.roots()).collect();
    km::check_declared(&list, &is_plain_ram)?;
    let me = crate::cpus::this_cpu();
    if vcpus[me].is_none_or(|r| r.kernel_root() != cr3 & walker::ADDRESS_MASK) {
        return Err(Refusal::Invalid); // the caller is not on its own kernel-mode root
    }
    let ranges = protected_ranges(vmcs)?;
    if ranges.iter().any(|r| window.overlaps(r.va, r.length)) {
        return Err(Refusal::Invalid);
    }
    let locked = lock_tables(&roots, window)?;
    // Checked only now that every root and every table of the kernel halves is read-only
    // and every vCPU acknowledged the shootdown (hypervisor/DESIGN.md invariant 9): checked
    // before, another vCPU could remap a recorded range between the check and the lock.
    let kernel_half = km::kernel_half(&Tables, cr3)?;
    let first_user = declared().find_map(VcpuRoots::user_root);
    let user_half = first_user
        .map(|r| km::kernel_half(&Tables, r))
        .transpose()?;
    for roots in declared() {
        let kernel = roots.kernel_root();
        if km::kernel_half(&Tables, kernel)? != kernel_half {
            return Err(Refusal::Denied(kernel));
        }
        if let Some(user) = roots.user_root() {
            if Some(km::kernel_half(&Tables, user)?) != user_half {
                return Err(Refusal::Denied(user));
            }
        }
        for root in roots.roots() {
            for range in &ranges {
                km::translates_as_recorded(&Tables, root, range, root != kernel)?;
            }
            km::check_lower_half(&mut Tables, root, &locked)?;
        }
    }
    Ok((LockedRoots { locked, vcpus }, ranges.len()))
}
