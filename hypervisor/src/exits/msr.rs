//! RDMSR and WRMSR exits (every MSR outside `msr_bitmap`'s allowlists): EFER with NXE and LME
//! pinned (hypervisor/DESIGN.md invariant 5); the SYSCALL/SYSENTER entry points, which one
//! `LockSyscallMsrs` hypercall freezes for good (invariant 6); the x2APIC ICR and LVTs checked
//! (`ipi`); IA32_APIC_BASE frozen; every other MSR refused with #GP and audited (rule `msr`):
//! the hypervisor never reads or writes an MSR it has not vetted on the guest's behalf.

use super::ipi;
use super::resume::{audit_register, Exception, Resume};
use crate::guest_paging::walker::is_canonical;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule};
// IA32_APIC_BASE (SDM Vol. 3A 11.4.4): the hypervisor put the APIC in x2APIC mode; moving
// the xAPIC window or leaving x2APIC mode would reopen the unchecked ICR. The x2APIC ICR
// (MSR 0x830): IPIs are checked (`ipi`).
use x86::msr::{IA32_APIC_BASE, IA32_X2APIC_ICR};
pub use x86::msr::{
    IA32_CSTAR, IA32_EFER, IA32_FMASK, IA32_LSTAR, IA32_STAR, IA32_SYSENTER_CS, IA32_SYSENTER_EIP,
    IA32_SYSENTER_ESP,
};
use x86::vmx::vmcs::guest;

/// The MSRs whose writes are emulated here (the pinned and lockable ones).
pub const EMULATED: [u32; 8] = [
    IA32_SYSENTER_CS,
    IA32_SYSENTER_ESP,
    IA32_SYSENTER_EIP,
    IA32_EFER,
    IA32_STAR,
    IA32_LSTAR,
    IA32_CSTAR,
    IA32_FMASK,
];

/// The IA32_EFER bits a 64-bit guest may set (SDM Vol. 3A 2.2.1, Vol. 4 Table 2-2): SYSCALL
/// enable, long mode enable and active, execute-disable enable. Others are refused.
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const EFER_ALLOWED: u64 = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
const EFER_PINNED: u64 = EFER_LME | EFER_NXE;

/// The `LockSyscallMsrs` hypercall: freezes the SYSCALL/SYSENTER MSRs (one-way); returns 0.
pub fn lock_syscall_msrs() -> rampart_hv_abi::HypercallResult {
    crate::locks::lock_syscall_msrs();
    log::info!("SYSCALL/SYSENTER MSRs locked");
    Ok(0)
}

/// What a write does: the EFER value to load, an MSR to write, or a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Load this value into the guest's EFER (VMCS guest state).
    Efer(u64),
    /// Write the value (to the VMCS for SYSENTER_*, to the CPU for the others).
    Write,
    /// #GP, as the CPU itself would raise (reserved bits, non-canonical address).
    Invalid,
    /// #GP and an audit record: the write breaks a pin or a lock.
    Blocked(Rule),
}

/// The pure decision for a guest write of `value` to `msr`.
pub fn decide(msr: u32, value: u64, syscall_msrs_locked: bool) -> Decision {
    match msr {
        IA32_EFER => {
            if value & !EFER_ALLOWED != 0 {
                Decision::Invalid
            } else if value & EFER_PINNED != EFER_PINNED {
                Decision::Blocked(Rule::PinnedEfer)
            } else {
                // LMA is read-only: it stays 1 in IA-32e mode (SDM Vol. 3A 10.8.5).
                Decision::Efer(value | EFER_LMA)
            }
        }
        _ if !EMULATED.contains(&msr) => Decision::Blocked(Rule::Msr),
        _ if syscall_msrs_locked => Decision::Blocked(Rule::LockedMsr),
        IA32_LSTAR | IA32_CSTAR | IA32_SYSENTER_ESP | IA32_SYSENTER_EIP if !is_canonical(value) => {
            Decision::Invalid
        }
        IA32_FMASK if value >> 32 != 0 => Decision::Invalid,
        _ => Decision::Write,
    }
}

pub fn handle_write(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let msr = regs.rcx as u32;
    let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    match msr {
        IA32_X2APIC_ICR => return ipi::handle_icr_write(vmcs, value),
        msr if ipi::is_lvt_with_delivery_mode(msr) => {
            return ipi::handle_lvt_write(vmcs, msr, value)
        }
        IA32_APIC_BASE => return apic_base_write(vmcs, value),
        _ => {}
    }
    match decide(msr, value, crate::locks::syscall_msrs_locked()) {
        Decision::Efer(efer) => vmcs.set(guest::IA32_EFER_FULL, efer),
        Decision::Write => write(vmcs, msr, value),
        Decision::Invalid => return Resume::Inject(Exception::GeneralProtection),
        Decision::Blocked(rule) => {
            audit_register(vmcs, rule, Access::WRITE, 0, u64::from(msr));
            return Resume::Inject(Exception::GeneralProtection);
        }
    }
    Resume::NextInstruction
}

/// IA32_APIC_BASE: rewriting the current value is allowed (kernels that "enable" an APIC that
/// is already enabled); any change is refused with #GP and audited (rule `ipi-delivery`: it
/// would take the local APIC, and so IPIs, out of the hypervisor's view).
fn apic_base_write(vmcs: &Vmcs, value: u64) -> Resume {
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; reading it has no side effects.
    #[allow(unsafe_code)]
    let current = unsafe { x86::msr::rdmsr(IA32_APIC_BASE) };
    if value == current {
        return Resume::NextInstruction;
    }
    let detail = u64::from(IA32_APIC_BASE);
    audit_register(vmcs, Rule::IpiDelivery, Access::WRITE, 0, detail);
    Resume::Inject(Exception::GeneralProtection)
}

/// RDMSR exits only for MSRs outside the read allowlist: #GP (as for an MSR the CPU lacks) and
/// an audit record.
pub fn handle_read(vmcs: &Vmcs, regs: &GuestRegisters) -> Resume {
    audit_register(vmcs, Rule::Msr, Access::READ, 0, regs.rcx & 0xffff_ffff);
    Resume::Inject(Exception::GeneralProtection)
}

fn write(vmcs: &Vmcs, msr: u32, value: u64) {
    match msr {
        IA32_SYSENTER_CS => vmcs.set(guest::IA32_SYSENTER_CS, value),
        IA32_SYSENTER_ESP => vmcs.set(guest::IA32_SYSENTER_ESP, value),
        IA32_SYSENTER_EIP => vmcs.set(guest::IA32_SYSENTER_EIP, value),
        // STAR, LSTAR, CSTAR, FMASK are not switched by VMX: the guest's values live in the
        // CPU; the host never executes SYSCALL.
        // SAFETY: `decide` checked canonical addresses and reserved bits, so WRMSR cannot
        // fault; these MSRs only affect SYSCALL, which the hypervisor does not use.
        #[allow(unsafe_code)]
        _ => unsafe { x86::msr::wrmsr(msr, value) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efer_pins_nxe_and_lme() {
        assert_eq!(
            decide(IA32_EFER, EFER_LME | EFER_NXE | EFER_SCE, false),
            Decision::Efer(EFER_LME | EFER_NXE | EFER_SCE | EFER_LMA)
        );
        assert_eq!(
            decide(IA32_EFER, EFER_LME, false),
            Decision::Blocked(Rule::PinnedEfer)
        );
        assert_eq!(
            decide(IA32_EFER, EFER_NXE, true),
            Decision::Blocked(Rule::PinnedEfer)
        );
        assert_eq!(
            decide(IA32_EFER, EFER_LME | EFER_NXE | (1 << 12), false),
            Decision::Invalid
        );
    }

    #[test]
    fn syscall_msrs_lock_one_way() {
        assert_eq!(
            decide(IA32_LSTAR, 0xffff_ffff_8000_1000, false),
            Decision::Write
        );
        assert_eq!(
            decide(IA32_LSTAR, 0xffff_ffff_8000_1000, true),
            Decision::Blocked(Rule::LockedMsr)
        );
        assert_eq!(
            decide(IA32_LSTAR, 0x0000_8000_0000_0000, false),
            Decision::Invalid
        );
        assert_eq!(decide(IA32_FMASK, 1 << 40, false), Decision::Invalid);
        assert_eq!(decide(IA32_STAR, u64::MAX, false), Decision::Write);
    }

    #[test]
    fn msrs_outside_the_vetted_set_are_never_written() {
        // kvmclock (KVM paravirtual, outside the bitmap's ranges), an MTRR, microcode update.
        for msr in [0x4b56_4d01, 0x200, 0x79] {
            assert_eq!(decide(msr, 0x1000, false), Decision::Blocked(Rule::Msr));
        }
    }
}
