//! Kernel page-table integrity under the boot policy `pagetables = locked`: the hypercalls
//! `LockKernelMappings`, `RegisterAddressSpace`, `SetRootEntry` and `ReleaseAddressSpace`
//! (checks in `policy::kernel_mappings`), the EPT rights they change, and the blocked writes'
//! rule. CR3 loads are checked in `exits::cr3`.
#![allow(unsafe_code)] // A/D presets and root-entry writes through the host's identity map

use super::guest_rip;
use crate::audit::{self, Attempt};
use crate::ept::entry::{MemoryType, Permissions};
use crate::guest_memory::walker::{self, PhysicalMemory, WalkError};
use crate::policy::kernel_mappings::{
    self as km, FrameFacts, Protected, Refusal, Registry, ReleaseRefusal, Space, StackWindow,
    TableMemory, MAX_PROTECTED,
};
use crate::policy::operations::{self, PageTable};
use crate::policy::SegmentKind;
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use rampart_hv_abi::{access, HypercallError, Rule};
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
/// The recorded translations (kernel text, rodata, GDT, IDT, LSTAR page).
static PROTECTED: spin::Once<([Protected; MAX_PROTECTED], usize)> = spin::Once::new();
/// Registered-space slot each vCPU has loaded (`NONE` before the lock).
pub(super) static LOADED: [AtomicU64; rampart_boot_info::MAX_CPUS] =
    [const { AtomicU64::new(NONE) }; rampart_boot_info::MAX_CPUS];
pub(super) const NONE: u64 = u64::MAX;
const PAGE: u64 = 4096;
const IA32_LSTAR: u32 = 0xc000_0082;

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
    locked()
        && REGISTRY
            .lock()
            .as_ref()
            .is_some_and(|r| r.is_protected_frame(gpa))
}

fn error(e: HypercallError) -> u64 {
    e as i64 as u64
}

fn deny(vmcs: &Vmcs, gpa: u64, detail: u64) -> u64 {
    audit::block(Attempt {
        rule: Rule::PageTable,
        access: access::HYPERCALL | access::WRITE,
        rip: guest_rip(vmcs),
        gva: 0,
        gpa,
        detail,
    });
    error(HypercallError::Denied)
}

fn refusal(vmcs: &Vmcs, r: Refusal, detail: u64) -> u64 {
    match r {
        Refusal::Invalid => error(HypercallError::InvalidArgument),
        Refusal::Unreadable(_) | Refusal::TooMany => error(HypercallError::OutOfRange),
        Refusal::Denied(gpa) => deny(vmcs, gpa, detail),
    }
}

/// Guest paging structures through the host's identity map: write-back guest RAM in EPT,
/// outside the hypervisor (`GuestPhysical::check_waiting`).
struct Tables;

impl Tables {
    fn check(gpa: u64) -> Result<(), WalkError> {
        crate::guest_memory::GuestPhysical.check_waiting(gpa, 8)
    }
}

impl PhysicalMemory for Tables {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        Self::check(gpa)?;
        // SAFETY: `check` found the 8 bytes in guest RAM mapped by EPT and outside the
        // hypervisor, which the host identity-maps; the guest may change them meanwhile, and a
        // volatile read of a plain integer is sound.
        Ok(unsafe { core::ptr::read_volatile(gpa as *const u64) })
    }
}

impl TableMemory for Tables {
    fn set_bits(&mut self, gpa: u64, bits: u64) -> Result<(), WalkError> {
        Self::check(gpa)?;
        // SAFETY: `check` found the 8 aligned bytes in guest RAM outside the hypervisor, which
        // the host identity-maps; an atomic OR races safely with the guest's own walks.
        unsafe { (*(gpa as *const AtomicU64)).fetch_or(bits, Ordering::SeqCst) };
        Ok(())
    }

    fn write_u64(&mut self, gpa: u64, value: u64) -> Result<(), WalkError> {
        Self::check(gpa)?;
        // SAFETY: as in `set_bits`; the entry belongs to a root the guest can no longer write.
        unsafe { (*(gpa as *const AtomicU64)).store(value, Ordering::SeqCst) };
        Ok(())
    }
}

/// Which frames may become roots or root-entry tables: guest RAM outside the kernel image, the
/// initrd and the hypervisor.
struct Facts {
    /// Also require EPT RW- write-back (false for roots this hypercall has just made
    /// read-only itself).
    writable: bool,
}

impl FrameFacts for Facts {
    fn is_plain_ram(&mut self, frame: u64) -> bool {
        let layout = &state::get().layout;
        if layout.in_hypervisor(frame)
            || layout.in_initrd(frame)
            || layout.segment_at(frame).is_some()
        {
            return false;
        }
        if !self.writable {
            return true;
        }
        let mut guard = state::EPT.lock();
        guard
            .as_mut()
            .and_then(|ept| ept.page(frame))
            .is_some_and(|(rights, ty)| {
                rights == Permissions::READ_WRITE && ty == Some(MemoryType::WriteBack)
            })
    }
}

/// The translations `LockKernelMappings` records: text and rodata from the measured ELF
/// (p_vaddr -> p_paddr), the current GDT and IDT pages, the page LSTAR points into.
fn protected_ranges(vmcs: &Vmcs) -> Result<([Protected; MAX_PROTECTED], usize), Refusal> {
    let mut out = [Protected::default(); MAX_PROTECTED];
    let mut count = 0;
    let mut push = |range: Protected| -> Result<(), Refusal> {
        *out.get_mut(count).ok_or(Refusal::TooMany)? = range;
        count += 1;
        Ok(())
    };
    let layout = &state::get().layout;
    for segment in layout.segments.iter().flatten() {
        if !matches!(segment.kind, SegmentKind::Text | SegmentKind::ReadOnly) {
            continue;
        }
        let gpa = segment.range.start & !(PAGE - 1);
        let end = (segment.range.start + segment.range.length).next_multiple_of(PAGE);
        push(Protected {
            va: segment.vaddr & !(PAGE - 1),
            gpa,
            length: end - gpa,
        })?;
    }
    let cr3 = vmcs.get(guest::CR3);
    // SAFETY: LSTAR exists on every 64-bit CPU; VMX does not switch it, so this is the
    // guest's value (locked by `LockSyscallMsrs` before this hypercall is accepted).
    let lstar = unsafe { x86::msr::rdmsr(IA32_LSTAR) };
    let tables = [
        (vmcs.get(guest::GDTR_BASE), vmcs.get(guest::GDTR_LIMIT) + 1),
        (vmcs.get(guest::IDTR_BASE), vmcs.get(guest::IDTR_LIMIT) + 1),
        (lstar, 1),
    ];
    for (base, length) in tables {
        for page in (base & !(PAGE - 1)..base + length).step_by(PAGE as usize) {
            let mapping = walker::translate(&Tables, cr3, 0, page)?;
            push(Protected {
                va: page,
                gpa: mapping.gpa & !(PAGE - 1),
                length: PAGE,
            })?;
        }
    }
    if !layout
        .segment_at(walker::translate(&Tables, cr3, 0, lstar)?.gpa)
        .is_some_and(|s| s.kind == SegmentKind::Text)
    {
        return Err(Refusal::Denied(lstar));
    }
    Ok((out, count))
}

/// Makes each frame read-only in EPT (the caller flushes).
fn protect_frames(frames: &[u64]) -> Result<(), Refusal> {
    let layout = &state::get().layout;
    let mut guard = state::EPT.lock();
    let ept = guard.as_mut().ok_or(Refusal::Invalid)?;
    for &frame in frames {
        operations::protect_range(ept, layout, frame, PAGE, Permissions::READ)
            .map_err(|_| Refusal::Denied(frame))?;
    }
    Ok(())
}

/// Gives released roots back their plain-RAM rights (RW-, as `is_plain_ram` required).
fn unprotect_frames(frames: &[u64]) {
    let mut guard = state::EPT.lock();
    if let Some(ept) = guard.as_mut() {
        for &frame in frames {
            let _ = ept.set(frame, PAGE, Permissions::READ_WRITE, MemoryType::WriteBack);
        }
    }
}

/// `LockKernelMappings` (RDI = stack window start, RSI = length, RDX = KPTI template root).
pub fn lock(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    if !POLICY.load(Ordering::SeqCst) {
        return error(HypercallError::NotSupported);
    }
    let caps = &state::get().caps;
    if locked()
        || !super::descriptor_tables::locked()
        || !super::msr::syscall_msrs_locked()
        || !regs.rdx.is_multiple_of(PAGE)
        || !super::cr3::can_exit(caps)
    {
        return error(HypercallError::InvalidArgument);
    }
    let Some(window) = StackWindow::new(regs.rdi, regs.rsi) else {
        return error(HypercallError::InvalidArgument);
    };
    let _serial = REQUESTS.lock();
    let result = (|| {
        let (ranges, count) = protected_ranges(vmcs)?;
        let cr3 = vmcs.get(guest::CR3);
        for range in &ranges[..count] {
            if window.overlaps(range.va, range.length) {
                return Err(Refusal::Invalid);
            }
            km::translates_as_recorded(&Tables, cr3, range)?;
            if regs.rdx != 0 {
                template_agrees(regs.rdx, range)?;
            }
        }
        let roots = [cr3 & walker::ADDRESS_MASK, regs.rdx];
        let roots = if regs.rdx == 0 {
            &roots[..1]
        } else {
            &roots[..]
        };
        // Walk, make read-only, shoot down, walk again: the lock is taken once a walk finds
        // no page that was not already read-only (no table changed between walk and lock).
        let mut locked = km::collect_and_preset(&mut Tables, roots, window)?;
        let mut stable = false;
        for _ in 0..3 {
            protect_frames(locked.frames())?;
            super::policy::flush();
            let again = km::collect_and_preset(&mut Tables, roots, window)?;
            stable = again.frames().iter().all(|&f| locked.contains(f));
            locked = again;
            if stable {
                break;
            }
        }
        if !stable {
            return Err(Refusal::Denied(roots[0]));
        }
        let kernel_half = km::kernel_half(&Tables, cr3)?;
        let template_half = match regs.rdx {
            0 => None,
            template => Some(km::kernel_half(&Tables, template)?),
        };
        let kernel = Space {
            kernel_cr3: cr3,
            user_cr3: 0,
        };
        Ok((
            Registry::new(locked, kernel_half, template_half, kernel),
            ranges,
            count,
        ))
    })();
    let (registry, ranges, count) = match result {
        Ok(done) => done,
        Err(r) => {
            super::policy::flush();
            return refusal(vmcs, r, regs.rdi);
        }
    };
    let pages = registry.locked.frames().len();
    super::cr3::set_kernel_cr3(vmcs.get(guest::CR3));
    *REGISTRY.lock() = Some(registry);
    PROTECTED.call_once(|| (ranges, count));
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

/// A protected page is absent from the KPTI template or translates as recorded there.
fn template_agrees(template: u64, range: &Protected) -> Result<(), Refusal> {
    let mut offset = 0;
    while offset < range.length {
        match walker::translate(&Tables, template, 0, range.va + offset) {
            Ok(m) if m.gpa != range.gpa + offset => return Err(Refusal::Denied(m.gpa)),
            Ok(_) | Err(WalkError::NotPresent { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        offset += PAGE;
    }
    Ok(())
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
    let candidates = [
        regs.rdi & walker::ADDRESS_MASK,
        regs.rsi & walker::ADDRESS_MASK,
    ];
    let candidates = if regs.rsi == 0 {
        &candidates[..1]
    } else {
        &candidates[..]
    };
    let _serial = REQUESTS.lock();
    // Plain RAM nobody protects yet, then read-only, then the content checks: the guest
    // cannot change a root between check and lock.
    let protected = |root| {
        REGISTRY
            .lock()
            .as_ref()
            .is_none_or(|r| r.is_protected_frame(root))
    };
    for &root in candidates {
        if protected(root) || !(Facts { writable: true }).is_plain_ram(root) {
            return deny(vmcs, root, regs.rdi);
        }
    }
    if candidates.len() == 2 && candidates[0] == candidates[1] {
        return deny(vmcs, candidates[0], regs.rdi);
    }
    if protect_frames(candidates).is_err() {
        unprotect_frames(candidates);
        return deny(vmcs, candidates[0], regs.rdi);
    }
    super::policy::flush();
    let result = match REGISTRY.lock().as_mut() {
        Some(registry) => registry.register(&Tables, &mut Facts { writable: false }, space),
        None => Err(Refusal::Invalid),
    };
    match result {
        Ok(_) => {
            for &root in candidates {
                for index in km::KERNEL_HALF_FIRST..km::ENTRIES {
                    let gpa = root + index as u64 * 8;
                    if Tables.read_u64(gpa).is_ok_and(|e| e & 1 != 0) {
                        let _ = Tables.set_bits(gpa, km::ACCESSED);
                    }
                }
            }
            0
        }
        Err(r) => {
            // Serialized by REQUESTS: nothing else protected these frames meanwhile.
            unprotect_frames(candidates);
            refusal(vmcs, r, regs.rdi)
        }
    }
}

fn not_locked() -> u64 {
    if POLICY.load(Ordering::SeqCst) {
        error(HypercallError::InvalidArgument)
    } else {
        error(HypercallError::NotSupported)
    }
}

/// `SetRootEntry` (RDI = kernel-mode root, RSI = index, RDX = entry).
pub fn set_root_entry(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    if !locked() {
        return not_locked();
    }
    let _serial = REQUESTS.lock();
    let guard = REGISTRY.lock();
    let Some(registry) = guard.as_ref() else {
        return not_locked();
    };
    match registry.check_root_entry(&mut Facts { writable: true }, regs.rdi, regs.rsi, regs.rdx) {
        Ok((roots, count)) => {
            let value = if regs.rdx & 1 != 0 {
                regs.rdx | km::ACCESSED
            } else {
                0
            };
            for root in &roots[..count] {
                let _ = Tables.write_u64(root + regs.rsi * 8, value);
            }
            0
        }
        Err(r) => {
            drop(guard);
            refusal(vmcs, r, regs.rsi)
        }
    }
}

/// `ReleaseAddressSpace` (RDI = kernel-mode root).
pub fn release(vmcs: &Vmcs, regs: &GuestRegisters) -> u64 {
    if !locked() {
        return not_locked();
    }
    let _serial = REQUESTS.lock();
    let mut guard = REGISTRY.lock();
    let Some(registry) = guard.as_mut() else {
        return not_locked();
    };
    let loaded = |slot: usize| {
        LOADED
            .iter()
            .any(|l| l.load(Ordering::SeqCst) == slot as u64)
    };
    match registry.release(regs.rdi & walker::ADDRESS_MASK, loaded) {
        Ok(space) => {
            let roots = [space.kernel_root(), space.user_root().unwrap_or(0)];
            let count = if space.user_cr3 == 0 { 1 } else { 2 };
            unprotect_frames(&roots[..count]);
            // Added rights need no shootdown: a stale read-only translation only makes a
            // write exit once more, and `exits::policy` retries such spurious violations.
            crate::smp::shootdown::flush_local();
            0
        }
        Err(ReleaseRefusal::NotRegistered) => error(HypercallError::OutOfRange),
        Err(ReleaseRefusal::Busy) => error(HypercallError::Busy),
        Err(ReleaseRefusal::Denied) => {
            drop(guard);
            deny(vmcs, regs.rdi, 0)
        }
    }
}
