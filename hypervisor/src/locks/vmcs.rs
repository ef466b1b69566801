//! The locks applied to a vCPU's VMCS: descriptor-table exiting once the tables are locked
//! (secondary control bit 2, SDM Vol. 3C 26.1.3), checked CR3 loads once the page tables are
//! (primary control bit 15, 26.6.2, with the vCPU's declared roots as CR3-target values,
//! 26.6.7). The locking vCPU applies them directly; every other vCPU from the lock's shootdown
//! (`smp::shootdown::acknowledge`), and a vCPU started later at its start.
#![allow(unsafe_code)] // VMCS control writes

use crate::state;
use crate::vmx::vmcs::{Vmcs, VmcsError};
use core::sync::atomic::{AtomicBool, Ordering};
use x86::vmx::vmcs::control::{self, PrimaryControls, SecondaryControls};
use x86::vmx::vmcs::guest;

/// Secondary processor-based control bit 2 (SDM Vol. 3C 25.6.2, Table 25-7).
pub const DTABLE_EXITING: u32 = SecondaryControls::DTABLE_EXITING.bits();
/// Per vCPU: CR3-load exiting is on in its VMCS.
static CR3_CHECKED: [AtomicBool; rampart_boot_info::MAX_CPUS] =
    [const { AtomicBool::new(false) }; rampart_boot_info::MAX_CPUS];
const TARGET_FIELDS: [u32; 4] = [
    control::CR3_TARGET_VALUE0,
    control::CR3_TARGET_VALUE1,
    control::CR3_TARGET_VALUE2,
    control::CR3_TARGET_VALUE3,
];

/// Applies every lock taken so far to this CPU's VMCS. Takes no lock: it runs in the NMI path.
pub fn apply_to_current_vmcs() {
    apply_descriptor_table_lock();
    apply_page_table_lock();
}

/// Turns descriptor-table exiting on in `vmcs` (secondary control bit 2).
///
/// # Safety
/// The CPU must allow descriptor-table exiting (IA32_VMX_PROCBASED_CTLS2 allowed-1 bit 2).
pub unsafe fn enable_descriptor_table_exiting(vmcs: &Vmcs) -> Result<(), VmcsError> {
    let secondary = u64::from(state::get().controls.secondary | DTABLE_EXITING);
    // SAFETY: the caller vouches that the CPU allows the control; its exits are handled by
    // `exits::descriptor_tables`, and nothing else in the controls changes.
    unsafe { vmcs.write_host_or_control(control::SECONDARY_PROCBASED_EXEC_CONTROLS, secondary) }
}

/// Turns descriptor-table exiting on in this CPU's VMCS if the tables are locked.
fn apply_descriptor_table_lock() {
    if !super::descriptor_tables_locked() {
        return;
    }
    // SAFETY: only called on a CPU running a vCPU, whose VMCS stays current in VMX root; the
    // lock only succeeds after checking that the CPU allows descriptor-table exiting.
    let _ = unsafe { enable_descriptor_table_exiting(&Vmcs::assume_current()) };
}

/// Turns checked CR3 loads on in this CPU's VMCS once the page tables are locked, with its
/// declared roots as CR3-target values. A vCPU found on any other root at that moment stops
/// the machine: its tables were never checked.
fn apply_page_table_lock() {
    let Some(lock) = super::locked_page_tables() else {
        return;
    };
    let me = crate::cpus::this_cpu();
    if CR3_CHECKED[me].swap(true, Ordering::SeqCst) {
        return;
    }
    // SAFETY: only called on a CPU running a vCPU, whose VMCS stays current in VMX root.
    let vmcs = unsafe { Vmcs::assume_current() };
    let cr3 = vmcs.get(guest::CR3);
    let Some(roots) = lock.vcpus[me].filter(|_| lock.may_load(me, cr3)) else {
        fatal!(
            "vCPU {me} runs on CR3 {cr3:#x}, not one of its declared roots, when its page tables are locked; stopping rather than trusting unchecked tables"
        );
    };
    set_cr3_targets(&vmcs, &roots.targets());
    let primary = state::get().controls.primary | PrimaryControls::CR3_LOAD_EXITING.bits();
    // SAFETY: `exits::page_tables::lock` checked the CPU allows CR3-load exiting; its exits
    // are handled by `exits::cr3::handle_load`.
    let _ = unsafe {
        vmcs.write_host_or_control(control::PRIMARY_PROCBASED_EXEC_CONTROLS, u64::from(primary))
    };
}

/// Sets this vCPU's CR3-target values (as many as the CPU supports; others exit).
fn set_cr3_targets(vmcs: &Vmcs, targets: &[u64]) {
    let count = targets.len().min(state::get().caps.cr3_target_count());
    let count = count.min(TARGET_FIELDS.len());
    for (field, &value) in TARGET_FIELDS.iter().zip(&targets[..count]) {
        // SAFETY: CR3-target values are plain comparands (26.6.7); any value is valid.
        let _ = unsafe { vmcs.write_host_or_control(*field, value) };
    }
    // SAFETY: `count` is within IA32_VMX_MISC's CR3-target count (checked at VM entry).
    let _ = unsafe { vmcs.write_host_or_control(control::CR3_TARGET_COUNT, count as u64) };
}
