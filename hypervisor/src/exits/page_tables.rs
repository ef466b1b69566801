//! Kernel page-table integrity under the boot policy `pagetables = locked`: the hypercalls
//! `LockKernelMappings`, `RegisterAddressSpace`, `SetRootEntry` and `ReleaseAddressSpace`
//! (checks in `policy::kernel_mappings`), the EPT rights they change, and the blocked writes'
//! rule. CR3 loads are checked in `exits::cr3`.
#![allow(unsafe_code)] // A/D presets and root-entry writes through the host's identity map

use crate::ept::entry::{MemoryType, Permissions};
use crate::guest_memory::walker::{self, PhysicalMemory, WalkError, PTE_PRESENT};
use crate::policy::kernel_mappings::{
    self as km, Protected, Refusal, Registry, Space, StackWindow, StructurePages, TableMemory,
    MAX_PROTECTED,
};
use crate::policy::{operations, SegmentKind};
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use rampart_hv_abi::{Access, HypercallError, Rule};
use x86::vmx::vmcs::guest;

/// Boot config `pagetables = locked`.
static POLICY: AtomicBool = AtomicBool::new(false);
/// Set once `LockKernelMappings` succeeded.
static LOCKED: AtomicBool = AtomicBool::new(false);
/// The locked kernel half and the registered spaces.
pub(super) static REGISTRY: spin::Mutex<Option<Registry>> = spin::Mutex::new(None);
/// Serializes the requests that change the registry and EPT rights together (held across
/// their shootdowns; never taken by the NMI path or by CR3 exits).
static REQUESTS: spin::Mutex<()> = spin::Mutex::new(());
/// Registered-space slot each vCPU has loaded (`u64::MAX` before the lock).
pub(super) static LOADED: [AtomicU64; rampart_boot_info::MAX_CPUS] =
    [const { AtomicU64::new(u64::MAX) }; rampart_boot_info::MAX_CPUS];
const PAGE: u64 = 4096;

/// Records the boot policy (before the first guest instruction).
pub fn set_policy(lock_page_tables: bool) {
    POLICY.store(lock_page_tables, Ordering::SeqCst);
}

/// True once the kernel's page tables are locked (CR3 loads are checked from then on).
pub fn locked() -> bool {
    LOCKED.load(Ordering::SeqCst)
}

/// True if the guest may not write `gpa`'s page (a locked structure page or a root).
pub fn is_protected_frame(gpa: u64) -> bool {
    let protected = |r: &Registry| r.is_protected_frame(gpa);
    locked() && REGISTRY.lock().as_ref().is_some_and(protected)
}

fn error(e: HypercallError) -> u64 {
    e as i64 as u64
}

/// The hypercall result for a refusal; a denial is audited (rule `page-table`).
fn refusal(vmcs: &Vmcs, r: Refusal, detail: u64) -> u64 {
    error(match r {
        Refusal::Invalid => HypercallError::InvalidArgument,
        Refusal::Unreadable | Refusal::TooMany | Refusal::NotRegistered => {
            HypercallError::OutOfRange
        }
        Refusal::Busy => HypercallError::Busy,
        Refusal::Denied(gpa) => {
            let access = Access::HYPERCALL | Access::WRITE;
            super::policy::block(vmcs, Rule::PageTable, access, 0, gpa, detail);
            HypercallError::Denied
        }
    })
}

/// Guest paging structures through the host's identity map: write-back guest RAM in EPT,
/// outside the hypervisor (`GuestPhysical::check_waiting`).
struct Tables;

impl Tables {
    /// The entry at `gpa`, once `check_waiting` vouched for its 8 bytes.
    fn entry(gpa: u64) -> Result<&'static AtomicU64, WalkError> {
        crate::guest_memory::GuestPhysical.check_waiting(gpa, 8)?;
        // SAFETY: `check_waiting` found the 8 bytes (aligned: an entry of a table) in guest
        // RAM mapped by EPT and outside the hypervisor, which the host identity-maps for good;
        // the guest may change them meanwhile, which atomic accesses race with safely.
        Ok(unsafe { &*(gpa as *const AtomicU64) })
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

    fn write_u64(&mut self, gpa: u64, value: u64) -> Result<(), WalkError> {
        Self::entry(gpa)?.store(value, Ordering::SeqCst);
        Ok(())
    }
}

/// Which frames may become roots or root-entry tables: guest RAM outside the kernel image, the
/// initrd and the hypervisor; if `writable`, also EPT RW- write-back (not for roots this
/// hypercall has just made read-only itself).
fn is_plain_ram(frame: u64, writable: bool) -> bool {
    let layout = &state::get().layout;
    let measured = layout.in_hypervisor(frame)
        || layout.in_initrd(frame)
        || layout.segment_at(frame).is_some();
    let rw_ram = || {
        let rights = |ept: &mut _| operations::ram_page(ept, layout, frame);
        state::EPT.lock().as_mut().map(rights) == Some(Ok(Permissions::READ_WRITE))
    };
    !measured && (!writable || rw_ram())
}

/// The translations `LockKernelMappings` records: text and rodata from the measured ELF
/// (p_vaddr -> p_paddr), the current GDT and IDT pages, the page LSTAR points into.
fn protected_ranges(vmcs: &Vmcs) -> Result<([Protected; MAX_PROTECTED], usize), Refusal> {
    let mut out = [Protected::default(); MAX_PROTECTED];
    let mut count = 0;
    let mut push = |va: u64, gpa: u64, length: u64| -> Result<(), Refusal> {
        *out.get_mut(count).ok_or(Refusal::TooMany)? = Protected { va, gpa, length };
        count += 1;
        Ok(())
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
    Ok((out, count))
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

/// Gives released roots back their plain-RAM rights (RW-, as `is_plain_ram` required).
fn unprotect_frames(frames: impl IntoIterator<Item = u64>) {
    if let Some(ept) = state::EPT.lock().as_mut() {
        for frame in frames {
            let _ = ept.map(frame, PAGE, Permissions::READ_WRITE, MemoryType::WriteBack);
        }
    }
}

/// Walks the kernel halves of `roots`, makes what it found read-only, shoots down and walks
/// again: the lock is taken once a walk finds no page that was not already read-only (no
/// table changed between walk and lock).
fn lock_tables(roots: &[u64], window: StackWindow) -> Result<StructurePages, Refusal> {
    let mut locked = km::collect_and_preset(&mut Tables, roots, window)?;
    for _ in 0..3 {
        protect_frames(locked.frames().iter().copied())?;
        super::policy::flush();
        let again = km::collect_and_preset(&mut Tables, roots, window)?;
        if again.frames().iter().all(|&f| locked.contains(f)) {
            return Ok(again);
        }
        locked = again;
    }
    Err(Refusal::Denied(roots[0]))
}

/// `LockKernelMappings` (RDI = stack window start, RSI = length, RDX = KPTI template root).
pub fn lock(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    if !POLICY.load(Ordering::SeqCst) {
        return error(HypercallError::NotSupported);
    }
    let caps = &state::get().caps;
    let ready = !locked()
        && super::descriptor_tables::locked()
        && super::msr::syscall_msrs_locked()
        && regs.rdx.is_multiple_of(PAGE)
        && super::cr3::can_exit(caps);
    let Some(window) = StackWindow::new(regs.rdi, regs.rsi).filter(|_| ready) else {
        return error(HypercallError::InvalidArgument);
    };
    let _serial = REQUESTS.lock();
    let (cr3, template) = (vmcs.get(guest::CR3), regs.rdx);
    let result = (|| {
        let (ranges, count) = protected_ranges(vmcs)?;
        if ranges[..count]
            .iter()
            .any(|r| window.overlaps(r.va, r.length))
        {
            return Err(Refusal::Invalid);
        }
        let roots = [cr3 & walker::ADDRESS_MASK, template];
        let locked = lock_tables(&roots[..if template == 0 { 1 } else { 2 }], window)?;
        // Checked only now that every table of the kernel halves is read-only and every vCPU
        // acknowledged the shootdown (DESIGN.md invariant 9): checked before, another vCPU
        // could remap a recorded range between the check and the lock.
        for range in &ranges[..count] {
            km::translates_as_recorded(&Tables, cr3, range, false)?;
            if template != 0 {
                km::translates_as_recorded(&Tables, template, range, true)?;
            }
        }
        let kernel_half = km::kernel_half(&Tables, cr3)?;
        let template_half = (template != 0)
            .then(|| km::kernel_half(&Tables, template))
            .transpose()?;
        let registry = Registry::new(locked, kernel_half, template_half, cr3);
        Ok((registry, count))
    })();
    let (registry, count) = match result {
        Ok(done) => done,
        Err(r) => {
            super::policy::flush();
            return refusal(vmcs, r, regs.rdi);
        }
    };
    let pages = registry.locked.frames().len();
    super::cr3::KERNEL_CR3.store(cr3, Ordering::SeqCst);
    *REGISTRY.lock() = Some(registry);
    LOCKED.store(true, Ordering::SeqCst);
    super::cr3::apply_lock_to_current_vmcs();
    // Every other vCPU drops stale EPT translations and starts checking CR3 loads.
    super::policy::flush();
    log::info!("page tables locked: {pages} paging-structure pages read-only, {count} protected ranges recorded, stack window {:#x}+{:#x}, CR3 loads checked ({} CR3-target values)",
        window.start,
        window.length,
        caps.cr3_target_count()
    );
    0
}

fn not_locked() -> u64 {
    if POLICY.load(Ordering::SeqCst) {
        error(HypercallError::InvalidArgument)
    } else {
        error(HypercallError::NotSupported)
    }
}

/// `RegisterAddressSpace` (RDI = kernel-mode CR3 value, RSI = user-mode CR3 value or 0).
pub fn register(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    if !locked() {
        return not_locked();
    }
    let space = Space {
        kernel_cr3: regs.rdi,
        user_cr3: regs.rsi,
    };
    let _serial = REQUESTS.lock();
    // Plain RAM nobody protects yet (two distinct frames), then read-only, then the content
    // checks: the guest cannot change a root between check and lock.
    for root in space.roots() {
        let protected = |r: &Registry| r.is_protected_frame(root);
        if REGISTRY.lock().as_ref().is_none_or(protected)
            || !is_plain_ram(root, true)
            || space.user_root() == Some(space.kernel_root())
        {
            return refusal(vmcs, Refusal::Denied(root), regs.rdi);
        }
    }
    let result = protect_frames(space.roots())
        .map_err(|_| Refusal::Denied(space.kernel_root()))
        .and_then(|()| {
            super::policy::flush();
            let mut registry = REGISTRY.lock();
            let registry = registry.as_mut().ok_or(Refusal::Invalid)?;
            registry.register(&Tables, &|frame| is_plain_ram(frame, false), space)
        });
    if let Err(r) = result {
        // Serialized by REQUESTS: nothing else protected these frames meanwhile.
        unprotect_frames(space.roots());
        return refusal(vmcs, r, regs.rdi);
    }
    for root in space.roots() {
        for gpa in (km::KERNEL_HALF_FIRST..km::ENTRIES).map(|index| root + index as u64 * 8) {
            if Tables.read_u64(gpa).is_ok_and(|e| e & PTE_PRESENT != 0) {
                let _ = Tables.set_bits(gpa, km::ACCESSED);
            }
        }
    }
    0
}

/// Runs a request on the registry once the tables are locked, serialized with the others; a
/// refusal is answered (and audited) after the registry lock is released.
fn request(
    vmcs: &Vmcs,
    detail: u64,
    run: impl FnOnce(&mut Registry) -> Result<(), Refusal>,
) -> u64 {
    if !locked() {
        return not_locked();
    }
    let _serial = REQUESTS.lock();
    let result = REGISTRY.lock().as_mut().map(run);
    match result {
        None => not_locked(),
        Some(Ok(())) => 0,
        Some(Err(r)) => refusal(vmcs, r, detail),
    }
}

/// `SetRootEntry` (RDI = kernel-mode root, RSI = index, RDX = entry).
pub fn set_root_entry(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    request(vmcs, regs.rsi, |registry| {
        let facts = |frame| is_plain_ram(frame, true);
        let space = registry.check_root_entry(&facts, regs.rdi, regs.rsi, regs.rdx)?;
        let present = regs.rdx & PTE_PRESENT != 0;
        for root in space.roots() {
            let value = if present { regs.rdx | km::ACCESSED } else { 0 };
            let _ = Tables.write_u64(root + regs.rsi * 8, value);
        }
        Ok(())
    })
}

/// `ReleaseAddressSpace` (RDI = kernel-mode root).
pub fn release(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    request(vmcs, 0, |registry| {
        let loaded = |slot| {
            LOADED
                .iter()
                .any(|l| l.load(Ordering::SeqCst) == slot as u64)
        };
        unprotect_frames(registry.release(regs.rdi, loaded)?.roots());
        // Added rights need no shootdown: a stale read-only translation only makes a
        // write exit once more, and `exits::policy` retries such spurious violations.
        crate::smp::shootdown::flush_local();
        Ok(())
    })
}
