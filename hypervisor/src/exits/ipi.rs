//! The guest's interprocessor interrupts: every write to the x2APIC ICR (MSR 0x830) exits
//! through the MSR bitmap and is checked here before the hypervisor sends it. The guest may
//! send fixed interrupts to its own CPUs; INIT and SIPI (which would restart a CPU outside the
//! hypervisor's control), SMI (which would run SMM code outside VMX and EPT), NMI (the
//! hypervisor's own signal) and lowest-priority or logical-mode delivery are refused, audited
//! with rule `ipi-delivery`, and dropped: the guest goes on, as after an ignored IPI.

use super::resume::{audit_register, Exception, Resume};
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Access, Rule};

/// x2APIC ICR fields (SDM Vol. 3A 11.12.9, Figure 11-28, and 11.6.1).
const VECTOR_MASK: u64 = 0xff;
/// Delivery mode, bits 10:8 (Figure 11-12): only fixed (0) is allowed; lowest priority (1),
/// SMI (2), NMI (4), INIT (5), start-up (6) and the reserved encodings are refused.
const DELIVERY_MODE_MASK: u64 = 0b111 << 8;
const DELIVERY_MODE_FIXED: u64 = 0;
const DESTINATION_LOGICAL: u64 = 1 << 11;
const SHORTHAND_SHIFT: u32 = 18;
const SHORTHAND_MASK: u64 = 0b11 << SHORTHAND_SHIFT;
/// Bits 13, 16-17 and 20-31 are reserved in the x2APIC ICR (a write setting them raises #GP).
const RESERVED_MASK: u64 = (1 << 13) | (0b11 << 16) | (0xfff << 20);
const DESTINATION_SHIFT: u32 = 32;
/// Destination 0xFFFFFFFF in physical mode: broadcast (11.12.9).
const BROADCAST: u32 = u32::MAX;
/// Vectors 0-15 are illegal for fixed delivery (11.5.3 "Error Handling").
const FIRST_LEGAL_VECTOR: u64 = 16;

/// The decision on one ICR write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiDecision {
    /// Send it as written.
    Forward,
    /// Reserved bits set: #GP, as the CPU would raise.
    Invalid,
    /// Not allowed (delivery mode, logical or foreign destination, illegal vector): dropped
    /// and audited.
    Refused,
}

/// LVT mask bit (SDM Vol. 3A 11.5.1, Figure 11-8).
const LVT_MASKED: u64 = 1 << 16;

/// The LVT entries with a delivery-mode field (CMCI, thermal, performance, LINT0/1, error):
/// set to SMI, NMI, INIT or ExtINT they would deliver what the ICR may not.
pub fn is_lvt_with_delivery_mode(msr: u32) -> bool {
    use super::msr_bitmap::x2apic::*;
    matches!(
        msr,
        LVT_CMCI | LVT_THERMAL | LVT_PERFORMANCE | LVT_LINT0 | LVT_LINT1 | LVT_ERROR
    )
}

/// An LVT write is allowed masked, or with fixed delivery.
pub fn lvt_allowed(value: u64) -> bool {
    value & LVT_MASKED != 0 || value & DELIVERY_MODE_MASK == DELIVERY_MODE_FIXED
}

/// Handles a guest write to an LVT entry with a delivery mode: forwarded if allowed, else
/// dropped and audited (rule `ipi-delivery`).
pub fn handle_lvt_write(vmcs: &Vmcs, msr: u32, value: u64) -> Resume {
    if value >> 32 != 0 {
        return Resume::Inject(Exception::GeneralProtection);
    }
    if lvt_allowed(value) {
        // SAFETY: x2APIC mode is on (the hypervisor set it and freezes IA32_APIC_BASE); the
        // value delivers a fixed vector or nothing.
        #[allow(unsafe_code)]
        unsafe {
            x86::msr::wrmsr(msr, value)
        };
    } else {
        audit_register(vmcs, Rule::IpiDelivery, Access::WRITE, 0, value);
    }
    Resume::NextInstruction
}

/// Checks a guest ICR write against the CPUs the guest was given (`guest_cpus`, APIC IDs).
pub fn decide(icr: u64, guest_cpus: impl IntoIterator<Item = u32>) -> IpiDecision {
    if icr & RESERVED_MASK != 0 {
        return IpiDecision::Invalid;
    }
    if icr & DELIVERY_MODE_MASK != DELIVERY_MODE_FIXED || icr & VECTOR_MASK < FIRST_LEGAL_VECTOR {
        return IpiDecision::Refused;
    }
    // A shorthand (self, all, all but self) only reaches CPUs that run under the hypervisor.
    if icr & SHORTHAND_MASK != 0 {
        return IpiDecision::Forward;
    }
    if icr & DESTINATION_LOGICAL != 0 {
        return IpiDecision::Refused;
    }
    let destination = (icr >> DESTINATION_SHIFT) as u32;
    if destination == BROADCAST || guest_cpus.into_iter().any(|id| id == destination) {
        IpiDecision::Forward
    } else {
        IpiDecision::Refused
    }
}

/// Handles a guest write of `value` to the x2APIC ICR.
pub fn handle_icr_write(vmcs: &Vmcs, value: u64) -> Resume {
    match decide(value, crate::cpus::online()) {
        IpiDecision::Forward => {
            // SAFETY: `decide` accepted a fixed-vector IPI to the guest's own CPUs.
            #[allow(unsafe_code)]
            unsafe {
                crate::arch::apic::forward_guest_icr(value)
            };
        }
        IpiDecision::Invalid => return Resume::Inject(Exception::GeneralProtection),
        IpiDecision::Refused => audit_register(vmcs, Rule::IpiDelivery, Access::WRITE, 0, value),
    }
    Resume::NextInstruction
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: [u32; 2] = [0, 1];

    fn icr(destination: u32, mode: u64, vector: u64) -> u64 {
        (u64::from(destination) << 32) | (mode << 8) | vector
    }

    #[test]
    fn fixed_ipis_to_own_cpus_pass() {
        assert_eq!(decide(icr(1, 0, 0x40), CPUS), IpiDecision::Forward);
        assert_eq!(decide(icr(BROADCAST, 0, 0x40), CPUS), IpiDecision::Forward);
        assert_eq!(decide((0b11 << 18) | 0x40, CPUS), IpiDecision::Forward);
    }

    #[test]
    fn init_sipi_smi_nmi_are_refused_whatever_the_destination() {
        // INIT, start-up, SMI, NMI, lowest priority, reserved; a legal vector, so only the
        // delivery mode can refuse.
        for mode in [0b101, 0b110, 0b010, 0b100, 0b001, 0b111] {
            for shorthand in 0..4u64 {
                assert_eq!(
                    decide(icr(1, mode, 0x40) | (shorthand << 18), CPUS),
                    IpiDecision::Refused
                );
            }
        }
    }

    #[test]
    fn lvt_entries_may_only_deliver_fixed_vectors() {
        assert!(lvt_allowed(0x40));
        assert!(lvt_allowed(LVT_MASKED | (0b010 << 8)));
        for mode in [0b010u64, 0b100, 0b101, 0b111] {
            assert!(!lvt_allowed((mode << 8) | 0x40), "mode {mode:#b}");
        }
    }

    #[test]
    fn foreign_logical_and_illegal_are_refused() {
        assert_eq!(decide(icr(7, 0, 0x40), CPUS), IpiDecision::Refused);
        assert_eq!(
            decide(icr(1, 0, 0x40) | DESTINATION_LOGICAL, CPUS),
            IpiDecision::Refused
        );
        assert_eq!(decide(icr(1, 0, 3), CPUS), IpiDecision::Refused);
        assert_eq!(
            decide(icr(1, 0, 0x40) | (1 << 13), CPUS),
            IpiDecision::Invalid
        );
    }
}
