//! Policy enforcement in VM exits: blocked EPT accesses become an audit record and a #VE in
//! the guest (vector 20, which the guest kernel handles by ending the offending thread) as
//! `policy::violation` decides, and
//! the policy hypercalls change EPT rights through `policy::operations`, followed by INVEPT.

use super::resume::{block, guest_rip, Exception, Resume};
use crate::audit;
use crate::devices;
use crate::ept::builder::Ept;
use crate::ept::entry::Permissions;
use crate::guest_memory::{Gpa, GuestBytes};
use crate::policy::operations::{self, Denial};
use crate::policy::violation::{self, Nested, Violation};
use crate::policy::ProtectedLayout;
use crate::smp::shootdown::tighten_all;
use crate::state;
use crate::vmx::qualification::EptViolation;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicU64, Ordering};
use rampart_hv_abi::{Access, AuditRecord, HypercallError, HypercallResult};
use x86::vmx::vmcs::ro;

/// The access that exited, as audit access bits (equal to the EPT rights bits it needs).
fn access_bits(q: EptViolation) -> Access {
    if q.fetch() {
        Access::EXECUTE
    } else if q.write() {
        Access::WRITE
    } else {
        Access::READ
    }
}

/// An EPT violation: records what the exit saw, asks `policy::violation` for the verdict,
/// audits it and resumes as the verdict says.
pub fn ept_violation(vmcs: &Vmcs) -> Resume {
    let q = EptViolation(vmcs.get(ro::EXIT_QUALIFICATION));
    let gpa = vmcs.get(ro::GUEST_PHYSICAL_ADDR_FULL);
    if spurious(gpa, q) {
        // A translation cached before rights were added (a released root): drop it, retry.
        crate::smp::shootdown::flush_local();
        return Resume::Unchanged;
    }
    let state = state::get();
    let violation = Violation {
        gpa,
        access: access_bits(q),
        allowed: q.allowed_rights(state.layout.mode_based_execute()),
        device_rule: q
            .write()
            .then(|| devices::write_rule(&state.ecam, gpa))
            .flatten(),
        locked_table: crate::locks::is_locked_table_page(gpa),
        protected_frame: crate::locks::is_protected_frame(gpa),
        vectoring: vmcs.read(ro::IDT_VECTORING_INFO).unwrap_or(0),
    };
    let verdict = violation::verdict(&state.layout, &violation);
    let linear = q
        .linear_address_valid()
        .then(|| vmcs.read(ro::GUEST_LINEAR_ADDR));
    let gva = linear.and_then(Result::ok).unwrap_or(0);
    block(vmcs, verdict.rule, violation.access, gva, gpa, 0);
    match verdict.nested {
        Nested::No => Resume::Inject(Exception::VirtualizationException),
        Nested::DoubleFault => Resume::Inject(Exception::DoubleFault),
        Nested::TripleFault => fatal!(
            "guest triple fault: a blocked access while delivering #DF at RIP {:#x}",
            guest_rip(vmcs)
        ),
    }
}

/// True if the EPT as it is now allows the access that exited (the CPU used a stale, more
/// restrictive translation).
fn spurious(gpa: u64, q: EptViolation) -> bool {
    let mut needed = Permissions::from_entry(u64::from(access_bits(q).bits()));
    // Under mode-based execute control a fetch from a user-mode address needs user-mode execute.
    if q.fetch() && q.user_mode_address() && state::get().layout.mode_based_execute() {
        needed = Permissions::USER_EXECUTE;
    }
    // Wait for the lock: a request holding it (a GrantExecute's freeze, say) ends soon, and
    // guessing "blocked" while it is held would turn a stale translation into a #VE that kills
    // a thread for an access the EPT allows. The NMI path never takes this lock.
    let allowed = state::EPT
        .lock()
        .as_mut()
        .and_then(|ept| ept.translate(gpa))
        .is_some_and(|t| t.permissions.contains(needed));
    // Retried once per page: the same page exiting again after the flush is a real block.
    let me = crate::cpus::this_cpu();
    let mark = (gpa & !0xfff) | 1;
    let previous = LAST_SPURIOUS[me].swap(if allowed { mark } else { 0 }, Ordering::Relaxed);
    allowed && previous != mark
}

/// Per vCPU: the page of the last violation treated as spurious (bit 0 set), or 0.
static LAST_SPURIOUS: [AtomicU64; rampart_boot_info::MAX_CPUS] =
    [const { AtomicU64::new(0) }; rampart_boot_info::MAX_CPUS];

/// Runs a policy operation on the EPT and turns its outcome into a hypercall result,
/// auditing denials (`requested` = the access bits the request asked for). The EPT lock is held
/// through the whole operation, shootdowns inside it included (the NMI path never takes it).
/// `removes_rights` says whether success left rights removed that need a shootdown after.
fn apply(
    vmcs: &Vmcs,
    requested: Access,
    removes_rights: bool,
    operation: impl FnOnce(&mut Ept<state::EptFrames>, &ProtectedLayout) -> Result<(), Denial>,
) -> HypercallResult {
    let layout = &state::get().layout;
    let result = state::EPT
        .lock()
        .as_mut()
        .map_or(Err(Denial::OutOfRange), |ept| operation(ept, layout));
    let error = match result {
        Ok(()) => {
            if removes_rights {
                tighten_all();
            }
            return Ok(0);
        }
        Err(Denial::OutOfRange) => HypercallError::OutOfRange,
        Err(Denial::Denied { rule, gpa }) => {
            block(vmcs, rule, requested | Access::HYPERCALL, 0, gpa, 0);
            HypercallError::Denied
        }
        Err(Denial::Ept(e)) => {
            log::error!("policy request failed: {e}");
            tighten_all();
            HypercallError::OutOfRange
        }
    };
    Err(error)
}

/// `ProtectRange`: `[gpa, gpa + length)` keeps only the rights `bits`.
pub fn protect_range(vmcs: &Vmcs, gpa: u64, length: u64, bits: u64) -> HypercallResult {
    let Some(requested) = u32::try_from(bits)
        .ok()
        .and_then(Access::from_bits)
        .filter(|access| Access::RWX.contains(*access))
    else {
        return Err(HypercallError::InvalidArgument);
    };
    let keep = Permissions::from_entry(bits);
    apply(vmcs, requested, true, |ept, layout| {
        operations::protect_range(ept, layout, gpa, length, keep)
    })
}

/// `GrantExecute`: `[gpa, gpa + length)` becomes executable if it holds the initrd's bytes at
/// `offset`.
pub fn grant_execute(vmcs: &Vmcs, gpa: u64, length: u64, offset: u64) -> HypercallResult {
    let s = state::get();
    // The grant ends by adding execute to pages the freeze already took write from: a stale
    // R-- translation only makes a fetch exit once more (`spurious`), so no second shootdown.
    apply(vmcs, Access::EXECUTE, false, |ept, layout| {
        operations::grant_execute(ept, layout, gpa, length, tighten_all, |gpa, length| {
            // Only whole pages of a program's executable segment (or its end), never any other
            // initrd bytes, and only once no vCPU can write them (the freeze before).
            s.program_text.allows(offset, length)
                && matches_initrd(s.layout.initrd, offset, gpa, length)
        })
    })
}

/// `RevokeExecute`: granted pages in `[gpa, gpa + length)` return to RW-.
pub fn revoke_execute(vmcs: &Vmcs, gpa: u64, length: u64) -> HypercallResult {
    apply(vmcs, Access::WRITE, true, |ept, layout| {
        operations::revoke_execute(ept, layout, gpa, length)
    })
}

/// True if guest memory `[gpa, gpa + length)` equals the initrd's bytes at `offset` and the
/// rest of the last page is zero (a segment's tail past its file data).
fn matches_initrd(initrd: crate::handoff::PhysRange, offset: u64, gpa: u64, length: u64) -> bool {
    let end = offset.checked_add(length);
    let Some(end) = end.filter(|&end| end <= initrd.length) else {
        return false;
    };
    let (measured_start, tail_start) = (initrd.start + offset, gpa + length);
    let page_end = tail_start.next_multiple_of(4096);
    // The policy checked every page of [gpa, page_end) is write-back guest RAM outside the
    // hypervisor, and [initrd + offset, initrd + end) lies in the measured (read-only) initrd.
    // No vCPU can write `[gpa, page_end)` while we read: `operations::grant_execute` made it
    // read-only in EPT and every vCPU acknowledged the shootdown first; no device may DMA.
    #[allow(unsafe_code)]
    // SAFETY: both ranges are guest RAM outside the hypervisor (above), and stable.
    let (code, measured, tail) = unsafe {
        (
            GuestBytes::vouched(Gpa(gpa), length as usize),
            GuestBytes::vouched(Gpa(measured_start), (end - offset) as usize),
            GuestBytes::vouched(Gpa(tail_start), (page_end - tail_start) as usize),
        )
    };
    code.equals(&measured) && tail.is_zero()
}

/// ReadAuditLog: copies records into a guest buffer that the guest itself could write
/// (read/write RAM outside the hypervisor), so the copy cannot write what the guest cannot.
pub fn read_audit_log(buffer: u64, capacity: u64, first: u64) -> HypercallResult {
    const RECORD: u64 = core::mem::size_of::<AuditRecord>() as u64;
    let bytes = capacity.checked_mul(RECORD);
    let Some(bytes) = bytes.filter(|&b| b > 0 && b <= 1 << 20) else {
        return Err(HypercallError::InvalidArgument);
    };
    // The EPT lock is held until the records are written, so another vCPU cannot take the
    // write right away between the check and the writes (no confused deputy).
    let mut ept = state::EPT.lock();
    if !buffer.is_multiple_of(8) || !guest_writable(ept.as_mut(), buffer, bytes) {
        return Err(HypercallError::OutOfRange);
    }
    // SAFETY: `guest_writable` checked every page of the buffer is guest RAM the guest may
    // write, outside the hypervisor; the EPT lock held keeps it so until the copy is done.
    #[allow(unsafe_code)]
    let guest_buffer = unsafe { GuestBytes::vouched(Gpa(buffer), bytes as usize) };
    let log = audit::LOG.lock();
    let mut written = 0;
    for (i, record) in log.read_from(first).take(capacity as usize).enumerate() {
        guest_buffer.write_at(i * RECORD as usize, record);
        written += 1;
    }
    drop(ept);
    Ok(written)
}

/// True if every page of `[start, start + length)` is write-back RAM outside the hypervisor
/// that the guest may write.
fn guest_writable(ept: Option<&mut Ept<state::EptFrames>>, start: u64, length: u64) -> bool {
    let (Some(ept), Some(end)) = (ept, start.checked_add(length)) else {
        return false;
    };
    let layout = &state::get().layout;
    (start & !4095..end)
        .step_by(4096)
        .all(|page| operations::ram_page(ept, layout, page).is_ok_and(|r| r.writable()))
}
