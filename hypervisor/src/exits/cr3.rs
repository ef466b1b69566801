//! Checked CR3 loads (`pagetables = locked`, after `LockKernelMappings`): CR3-load exiting
//! is on (primary control bit 15, SDM Vol. 3C 26.6.2) except for the vCPU's own declared CR3
//! values, which are its CR3-target values (26.6.7: a MOV to CR3 of a target value does not
//! exit). The kernel runs each CPU on one root for good (per-CPU roots): a process switch
//! rewrites tables below it, and KPTI's kernel/user switch and the TLB flush of a switch load
//! declared values, so none of them exits where the CPU offers enough targets (4 on every
//! Bochs model; none on nested KVM, where each such load exits and is checked here). A load
//! of any other root is refused with #GP and audited (rule `cr3-load`).
#![allow(unsafe_code)] // VMCS control writes and INVVPID

use super::resume::{Exception, Resume};
use crate::arch::instructions::{invvpid, InvvpidType};
use crate::guest_paging::walker::ADDRESS_MASK;
use crate::state;
use crate::vmx::caps::{ept_cap, VmxCapabilities};
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule, CR3_NO_FLUSH};
use x86::vmx::vmcs::control::{PrimaryControls, SecondaryControls};
use x86::vmx::vmcs::guest;

/// CR4.PCIDE (bit 17): CR3 bits 11:0 are a PCID and bit 63 of a MOV source means no flush.
const CR4_PCIDE: u64 = x86::controlregs::Cr4::CR4_ENABLE_PCID.bits() as u64;
/// True if the CPU lets CR3 loads exit (allowed-1 half of the primary controls).
pub fn can_exit(caps: &VmxCapabilities) -> bool {
    (caps.procbased >> 32) & u64::from(PrimaryControls::CR3_LOAD_EXITING.bits()) != 0
}

/// A MOV to CR3 of `value` (control-register access exit, 28.2.1 Table 28-3): one that is
/// not a target value (or any, where the CPU has none).
pub fn handle_load(vmcs: &Vmcs, value: u64) -> Resume {
    let pcide = vmcs.get(guest::CR4) & CR4_PCIDE != 0;
    if value & CR3_NO_FLUSH != 0 && !pcide {
        return Resume::Inject(Exception::GeneralProtection); // reserved bit (4.10.4.1)
    }
    let me = crate::cpus::this_cpu();
    // Not locked: CR3 exiting is off, but load as the CPU would.
    if crate::locks::locked_page_tables().is_some_and(|lock| !lock.may_load(me, value)) {
        let (access, gpa) = (Access::REGISTER | Access::WRITE, value & ADDRESS_MASK);
        super::resume::block(vmcs, Rule::Cr3Load, access, 0, gpa, value);
        return Resume::Inject(Exception::GeneralProtection);
    }
    load(vmcs, value, pcide)
}

/// Emulates the load: CR3 without bit 63, and the TLB invalidation the instruction does
/// (4.10.4.1): none with PCIDE and bit 63, else the VPID's non-global mappings (a superset of
/// the new PCID's; all of them where the CPU lacks INVVPID type 3). Without VPID, VM entry
/// itself flushes (29.4.3.1).
fn load(vmcs: &Vmcs, value: u64, pcide: bool) -> Resume {
    vmcs.set(guest::CR3, value & !CR3_NO_FLUSH);
    let s = state::get();
    let keep = pcide && value & CR3_NO_FLUSH != 0;
    if !keep && s.controls.has_secondary(SecondaryControls::ENABLE_VPID) {
        // Like the instruction itself, keep global translations where the CPU can.
        let caps = &s.caps;
        let kind = if caps.ept_has(ept_cap::INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS) {
            InvvpidType::SingleContextRetainingGlobals
        } else if caps.ept_has(ept_cap::INVVPID_SINGLE_CONTEXT) {
            InvvpidType::SingleContext
        } else {
            InvvpidType::AllContext
        };
        // SAFETY: VPID is enabled (so INVVPID exists, A.10) with the guest's non-zero VPID;
        // the type is one the capability MSR reports (all-context when single is absent).
        unsafe { invvpid(kind, crate::vmx::setup::GUEST_VPID) };
    }
    Resume::NextInstruction
}
