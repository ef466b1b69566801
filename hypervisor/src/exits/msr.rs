//! WRMSR exits for the MSRs the policy guards (the MSR bitmap traps only their writes, reads
//! never exit): EFER with NXE and LME pinned (DESIGN.md invariant 5), and the SYSCALL/SYSENTER
//! entry points, which one `LockSyscallMsrs` hypercall freezes for good (invariant 6).

use super::{guest_rip, Exception, Resume};
use crate::audit::{self, Attempt};
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_hv_abi::{access, Rule};
use x86::vmx::vmcs::guest;

pub const IA32_SYSENTER_CS: u32 = 0x174;
pub const IA32_SYSENTER_ESP: u32 = 0x175;
pub const IA32_SYSENTER_EIP: u32 = 0x176;
pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_STAR: u32 = 0xc000_0081;
pub const IA32_LSTAR: u32 = 0xc000_0082;
pub const IA32_CSTAR: u32 = 0xc000_0083;
pub const IA32_FMASK: u32 = 0xc000_0084;

/// IA32_APIC_BASE (SDM Vol. 3A 11.4.4): the hypervisor put the APIC in x2APIC mode; moving
/// the xAPIC window or leaving x2APIC mode would reopen the unchecked ICR.
pub const IA32_APIC_BASE: u32 = crate::arch::apic::IA32_APIC_BASE;
/// The x2APIC ICR (MSR 0x830): IPIs are checked (`ipi`).
pub const X2APIC_ICR: u32 = crate::arch::apic::X2APIC_ICR;

/// The MSRs whose writes exit.
pub const TRAPPED: [u32; 10] = [
    IA32_APIC_BASE,
    X2APIC_ICR,
    IA32_SYSENTER_CS,
    IA32_SYSENTER_ESP,
    IA32_SYSENTER_EIP,
    IA32_EFER,
    IA32_STAR,
    IA32_LSTAR,
    IA32_CSTAR,
    IA32_FMASK,
];

/// EFER bits (SDM Vol. 3A 2.2.1): SCE, LME, LMA, NXE. Others are refused.
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
/// Pinned from the first instruction (the entry contract sets them).
const EFER_PINNED: u64 = EFER_LME | EFER_NXE;

static SYSCALL_MSRS_LOCKED: AtomicBool = AtomicBool::new(false);

/// Sets the write-exit bits of the trapped MSRs in a 4 KiB MSR bitmap (SDM Vol. 3C 25.6.9:
/// write bitmap for MSRs 0-1FFFH at byte 2048, for C0000000H-C0001FFFH at byte 3072).
pub fn trap_writes(bitmap: &mut [u8; 4096]) {
    for msr in TRAPPED {
        let (base, index) = if msr >= 0xc000_0000 {
            (3072, msr - 0xc000_0000)
        } else {
            (2048, msr)
        };
        bitmap[base + (index / 8) as usize] |= 1 << (index % 8);
    }
}

/// Freezes the SYSCALL/SYSENTER MSRs (one-way).
pub fn lock_syscall_msrs() {
    SYSCALL_MSRS_LOCKED.store(true, Ordering::SeqCst);
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
            if value & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0 {
                Decision::Invalid
            } else if value & EFER_PINNED != EFER_PINNED {
                Decision::Blocked(Rule::PinnedEfer)
            } else {
                // LMA is read-only: it stays 1 in IA-32e mode (SDM Vol. 3A 10.8.5).
                Decision::Efer(value | EFER_LMA)
            }
        }
        _ if syscall_msrs_locked => Decision::Blocked(Rule::LockedMsr),
        IA32_LSTAR | IA32_CSTAR | IA32_SYSENTER_ESP | IA32_SYSENTER_EIP if !canonical(value) => {
            Decision::Invalid
        }
        IA32_FMASK if value >> 32 != 0 => Decision::Invalid,
        _ => Decision::Write,
    }
}

fn canonical(address: u64) -> bool {
    let upper = (address as i64) >> 47;
    upper == 0 || upper == -1
}

pub fn handle_write(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    let msr = regs.rcx as u32;
    let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    match msr {
        X2APIC_ICR => return super::ipi::handle_icr_write(vmcs, value),
        IA32_APIC_BASE => return apic_base_write(vmcs, value),
        _ => {}
    }
    match decide(msr, value, SYSCALL_MSRS_LOCKED.load(Ordering::SeqCst)) {
        Decision::Efer(efer) => vmcs.set(guest::IA32_EFER_FULL, efer),
        Decision::Write => write(vmcs, msr, value),
        Decision::Invalid => return Resume::Inject(Exception::GeneralProtection),
        Decision::Blocked(rule) => {
            audit::block(Attempt {
                rule,
                access: access::REGISTER | access::WRITE,
                rip: guest_rip(vmcs),
                gva: 0,
                gpa: 0,
                detail: u64::from(msr),
            });
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
    audit::block(Attempt {
        rule: Rule::IpiDelivery,
        access: access::REGISTER | access::WRITE,
        rip: guest_rip(vmcs),
        gva: 0,
        gpa: 0,
        detail: u64::from(IA32_APIC_BASE),
    });
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
    fn bitmap_traps_writes_only() {
        let mut bitmap = [0u8; 4096];
        trap_writes(&mut bitmap);
        assert_eq!(
            bitmap[..2048].iter().map(|b| b.count_ones()).sum::<u32>(),
            0,
            "no read exits"
        );
        assert_eq!(bitmap[2048 + 0x174 / 8], 0b0111_0000);
        assert_eq!(bitmap[2048 + 0x830 / 8], 0b0000_0001);
        assert_eq!(bitmap[3072 + 0x80 / 8], 0b0001_1111);
    }
}

/// True once `LockSyscallMsrs` succeeded.
pub fn syscall_msrs_locked() -> bool {
    SYSCALL_MSRS_LOCKED.load(Ordering::SeqCst)
}
