//! What an exit handler does to the guest: resume it past the instruction or with an exception
//! injected (SDM Vol. 3C 25.8.3), and the guest facts every handler reads (CPL, RIP) or records
//! (an audited refusal).

use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule};
use x86::vmx::vmcs::{control, guest, ro};

/// What the guest does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Continue after the exiting instruction (it was emulated).
    NextInstruction,
    /// Deliver this exception at the exiting instruction (it faults, as on bare metal).
    Inject(Exception),
    /// Re-enter as the handler left the guest state (a debugger stop, or an event it set up).
    Unchanged,
}

/// Exceptions the hypervisor injects, numbered by vector (SDM Vol. 3A 7.3, Table 7-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the SDM's names (#VE: virtualization exception)
pub enum Exception {
    InvalidOpcode = 6,
    /// #DF: a blocked access while the guest's CPU was delivering an exception.
    DoubleFault = 8,
    GeneralProtection = 13,
    /// #VE: a blocked EPT access, reported to the guest kernel (no error code).
    VirtualizationException = 20,
}

/// VM-entry interruption-information fields (SDM Vol. 3C 25.8.3, Table 25-17).
const INTERRUPTION_TYPE_HARDWARE_EXCEPTION: u64 = 3 << 8;
const INTERRUPTION_DELIVER_ERROR_CODE: u64 = 1 << 11;
pub const INTERRUPTION_VALID: u64 = 1 << 31;
/// Interruption type NMI (Table 25-17), with vector 2.
pub const NMI_INTERRUPTION: u64 = (2 << 8) | 2 | INTERRUPTION_VALID;
/// Interruptibility state bits 0 and 1: blocking by STI / by MOV SS (25.4.2, Table 25-3),
/// which end once the guest moves past an instruction.
const BLOCKING_BY_STI_OR_MOV_SS: u64 = 0b11;

pub fn advance_rip(vmcs: &Vmcs) {
    let rip = vmcs.get(guest::RIP);
    let length = vmcs.get(ro::VMEXIT_INSTRUCTION_LEN);
    vmcs.set(guest::RIP, rip.wrapping_add(length));
    clear_interruptibility(vmcs, BLOCKING_BY_STI_OR_MOV_SS);
}

/// Clears `bits` of the guest interruptibility state (SDM Vol. 3C 25.4.2, Table 25-3).
pub fn clear_interruptibility(vmcs: &Vmcs, bits: u64) {
    let state = vmcs.get(guest::INTERRUPTIBILITY_STATE);
    if state & bits != 0 {
        vmcs.set(guest::INTERRUPTIBILITY_STATE, state & !bits);
    }
}

pub fn inject(vmcs: &Vmcs, exception: Exception) {
    let mut info = exception as u64 | INTERRUPTION_TYPE_HARDWARE_EXCEPTION | INTERRUPTION_VALID;
    // #GP and #DF push an error code (SDM Vol. 3A 7.3, Table 7-1); #UD and #VE do not.
    if exception == Exception::GeneralProtection || exception == Exception::DoubleFault {
        info |= INTERRUPTION_DELIVER_ERROR_CODE;
        vmcs.set(control::VMENTRY_EXCEPTION_ERR_CODE, 0);
    }
    vmcs.set(control::VMENTRY_INTERRUPTION_INFO_FIELD, info);
}

/// The guest's current privilege level: DPL of SS (SDM Vol. 3C 27.3.1.2 keeps it equal to CPL).
pub fn guest_cpl(vmcs: &Vmcs) -> u8 {
    const AR_DPL_SHIFT: u64 = 5;
    ((vmcs.get(guest::SS_ACCESS_RIGHTS) >> AR_DPL_SHIFT) & 0b11) as u8
}

/// Audits a blocked attempt by the guest instruction at RIP.
pub fn block(vmcs: &Vmcs, rule: Rule, access: Access, gva: u64, gpa: u64, detail: u64) {
    let rip = guest_rip(vmcs);
    let attempt = crate::audit::Attempt {
        rule,
        access,
        rip,
        gva,
        gpa,
        detail,
    };
    crate::audit::block(attempt);
}

/// Audits a refused register-like access (MSR, port, ICR, configuration write) at the
/// guest's RIP: `access` is READ or WRITE, `gpa` an address it names (0 if none), `detail`
/// the register number or value.
pub fn audit_register(vmcs: &Vmcs, rule: Rule, access: Access, gpa: u64, detail: u64) {
    block(vmcs, rule, Access::REGISTER | access, 0, gpa, detail);
}

/// The guest's RIP at the exit.
pub fn guest_rip(vmcs: &Vmcs) -> u64 {
    vmcs.get(guest::RIP)
}
