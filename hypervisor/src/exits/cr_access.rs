//! MOV to CR0/CR4 that changes a bit the hypervisor owns (the guest/host masks hold the bits
//! VMX pins, SDM Vol. 3C 25.6.6): the guest's view goes to the read shadow, the CPU gets the
//! value with the fixed bits applied.

use super::resume::{audit_register, Exception, Resume};
use crate::policy::pinned::CR0_WP;
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::caps::VmxCapabilities;
use crate::vmx::exit_reason::ExitReason;
use crate::vmx::qualification::{CrAccess, CrAccessType};
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule};
use x86::controlregs::{Cr0, Cr4};
use x86::vmx::vmcs::{control, guest, ro};

const CR0_PE: u64 = Cr0::CR0_PROTECTED_MODE.bits() as u64;
const CR0_PG: u64 = Cr0::CR0_ENABLE_PAGING.bits() as u64;

/// The pinned CR bits a write of `value` would clear, given the pinned set.
pub fn clears_pinned(register: u8, value: u64, pinned_cr4: u64) -> u64 {
    match register {
        0 => CR0_WP & !value,
        4 => pinned_cr4 & !value,
        _ => 0,
    }
}

/// The value the CPU should hold for a guest write of `value` to CR0, or `None` if the write
/// must fault: clearing PE or PG is impossible without unrestricted guest (a 64-bit guest
/// cannot leave paging natively either without first leaving long mode).
pub fn cr0_for_guest(caps: &VmxCapabilities, value: u64) -> Option<u64> {
    if value & (CR0_PE | CR0_PG) != CR0_PE | CR0_PG || value >> 32 != 0 {
        return None;
    }
    Some(caps.fit_cr0(value, false))
}

/// The value the CPU should hold for a guest write to CR4, or `None` for bits the CPU does not
/// allow in VMX operation (natively those writes raise #GP too).
pub fn cr4_for_guest(caps: &VmxCapabilities, value: u64) -> Option<u64> {
    const CR4_VMXE: u64 = Cr4::CR4_ENABLE_VMX.bits() as u64;
    // Clearing PAE in IA-32e mode raises #GP natively (SDM Vol. 3A 2.4.3, "MOV to CR4"); let
    // through, it would make the next VM entry fail.
    const CR4_PAE: u64 = Cr4::CR4_ENABLE_PAE.bits() as u64;
    let requested = value & !CR4_VMXE;
    if requested & !caps.cr4_fixed1 != 0 || requested & CR4_PAE == 0 {
        return None;
    }
    Some(caps.fit_cr4(requested))
}

/// A control-register exit: MOV to CR3 goes to `cr3`; MOV to CR0 or CR4 is checked here.
pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let qualification = CrAccess(vmcs.get(ro::EXIT_QUALIFICATION));
    let register = qualification.control_register();
    if qualification.access_type() != CrAccessType::MovToCr || !matches!(register, 0 | 3 | 4) {
        crate::stop::unexpected(vmcs, regs, ExitReason::CrAccess as u16);
    }
    // RSP (the only register `value` does not hold) lives in the VMCS.
    let value = regs
        .value(qualification.gpr())
        .unwrap_or_else(|| vmcs.get(guest::RSP));
    if register == 3 {
        return super::cr3::handle_load(vmcs, value);
    }
    let cleared = clears_pinned(register, value, crate::locks::pinned_cr4());
    if cleared != 0 {
        let detail = (u64::from(register) << 32) | cleared;
        audit_register(vmcs, Rule::PinnedControlRegister, Access::WRITE, 0, detail);
        return Resume::Inject(Exception::GeneralProtection);
    }
    let caps = &state::get().caps;
    let (actual, guest_field, shadow_field) = if register == 0 {
        (
            cr0_for_guest(caps, value),
            guest::CR0,
            control::CR0_READ_SHADOW,
        )
    } else {
        (
            cr4_for_guest(caps, value),
            guest::CR4,
            control::CR4_READ_SHADOW,
        )
    };
    let Some(actual) = actual else {
        return Resume::Inject(Exception::GeneralProtection);
    };
    if register == 4 {
        crate::locks::pin_cr4(value);
    }
    vmcs.set(guest_field, actual);
    vmcs.set(shadow_field, value);
    Resume::NextInstruction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_bits_cannot_be_cleared() {
        const SMEP: u64 = 1 << 20;
        assert_eq!(clears_pinned(0, 0x8001_0033, 0), 0);
        assert_eq!(clears_pinned(0, 0x8000_0033, 0), CR0_WP);
        assert_eq!(clears_pinned(4, 0x20, SMEP), SMEP);
        assert_eq!(clears_pinned(4, 0x20 | SMEP, SMEP), 0);
        assert_eq!(
            clears_pinned(4, 0x20, 0),
            0,
            "not pinned until the guest sets it"
        );
        assert_eq!(clears_pinned(3, 0, u64::MAX), 0, "CR3 is not pinned");
    }
}
