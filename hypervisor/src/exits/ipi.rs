//! The guest's interprocessor interrupts: every write to the x2APIC ICR (MSR 0x830) exits
//! through the MSR bitmap and is checked here before the hypervisor sends it. The guest may
//! send fixed interrupts to its own CPUs; INIT and SIPI (which would restart a CPU outside the
//! hypervisor's control), SMI (which would run SMM code outside VMX and EPT), NMI (the
//! hypervisor's own signal) and lowest-priority or logical-mode delivery are refused, audited
//! with rule `ipi-delivery`, and dropped: the guest goes on, as after an ignored IPI.

use super::Resume;
use rampart_hv_abi::{access, Rule};

/// x2APIC ICR fields (SDM Vol. 3A 11.12.9, Figure 11-28, and 11.6.1).
const VECTOR_MASK: u64 = 0xff;
const DELIVERY_MODE_SHIFT: u32 = 8;
const DELIVERY_MODE_MASK: u64 = 0b111 << DELIVERY_MODE_SHIFT;
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

/// Delivery modes (Figure 11-12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    StartUp,
    Reserved,
}

impl DeliveryMode {
    fn of(icr: u64) -> Self {
        match (icr & DELIVERY_MODE_MASK) >> DELIVERY_MODE_SHIFT {
            0b000 => Self::Fixed,
            0b001 => Self::LowestPriority,
            0b010 => Self::Smi,
            0b100 => Self::Nmi,
            0b101 => Self::Init,
            0b110 => Self::StartUp,
            _ => Self::Reserved,
        }
    }
}

/// The decision on one ICR write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiDecision {
    /// Send it as written.
    Forward,
    /// Reserved bits set: #GP, as the CPU would raise.
    Invalid,
    /// Not allowed: dropped and audited.
    Refused(IpiRefusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiRefusal {
    DeliveryMode(DeliveryMode),
    LogicalDestination,
    IllegalVector,
    /// A physical destination that is not one of the guest's CPUs.
    ForeignDestination(u32),
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
    value & LVT_MASKED != 0 || DeliveryMode::of(value) == DeliveryMode::Fixed
}

/// Handles a guest write to an LVT entry with a delivery mode: forwarded if allowed, else
/// dropped and audited (rule `ipi-delivery`).
pub fn handle_lvt_write(vmcs: &crate::vmx::vmcs::Vmcs, msr: u32, value: u64) -> Resume {
    if value >> 32 != 0 {
        return Resume::Inject(super::Exception::GeneralProtection);
    }
    if lvt_allowed(value) {
        // SAFETY: x2APIC mode is on (the hypervisor set it and freezes IA32_APIC_BASE); the
        // value delivers a fixed vector or nothing.
        #[allow(unsafe_code)]
        unsafe {
            x86::msr::wrmsr(msr, value)
        };
    } else {
        refuse(vmcs, value);
    }
    Resume::NextInstruction
}

fn refuse(vmcs: &crate::vmx::vmcs::Vmcs, value: u64) {
    super::audit_register(vmcs, Rule::IpiDelivery, access::WRITE, 0, value);
}

/// Checks a guest ICR write against the CPUs the guest was given (`guest_cpus`, APIC IDs).
pub fn decide(icr: u64, guest_cpus: &[u32]) -> IpiDecision {
    if icr & RESERVED_MASK != 0 {
        return IpiDecision::Invalid;
    }
    let mode = DeliveryMode::of(icr);
    if mode != DeliveryMode::Fixed {
        return IpiDecision::Refused(IpiRefusal::DeliveryMode(mode));
    }
    if icr & VECTOR_MASK < FIRST_LEGAL_VECTOR {
        return IpiDecision::Refused(IpiRefusal::IllegalVector);
    }
    // A shorthand (self, all, all but self) only reaches CPUs that run under the hypervisor.
    if icr & SHORTHAND_MASK != 0 {
        return IpiDecision::Forward;
    }
    if icr & DESTINATION_LOGICAL != 0 {
        return IpiDecision::Refused(IpiRefusal::LogicalDestination);
    }
    let destination = (icr >> DESTINATION_SHIFT) as u32;
    if destination == BROADCAST || guest_cpus.contains(&destination) {
        IpiDecision::Forward
    } else {
        IpiDecision::Refused(IpiRefusal::ForeignDestination(destination))
    }
}

/// Handles a guest write of `value` to the x2APIC ICR.
pub fn handle_icr_write(vmcs: &crate::vmx::vmcs::Vmcs, value: u64) -> Resume {
    let mut cpus = [0u32; rampart_boot_info::MAX_CPUS];
    let mut count = 0;
    for id in crate::smp::cpus::online() {
        cpus[count] = id;
        count += 1;
    }
    match decide(value, &cpus[..count]) {
        IpiDecision::Forward => {
            // SAFETY: `decide` accepted a fixed-vector IPI to the guest's own CPUs.
            #[allow(unsafe_code)]
            unsafe {
                crate::arch::apic::forward_guest_icr(value)
            };
            Resume::NextInstruction
        }
        IpiDecision::Invalid => Resume::Inject(super::Exception::GeneralProtection),
        IpiDecision::Refused(_) => {
            refuse(vmcs, value);
            Resume::NextInstruction
        }
    }
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
        assert_eq!(decide(icr(1, 0, 0x40), &CPUS), IpiDecision::Forward);
        assert_eq!(decide(icr(BROADCAST, 0, 0x40), &CPUS), IpiDecision::Forward);
        assert_eq!(decide((0b11 << 18) | 0x40, &CPUS), IpiDecision::Forward);
    }

    #[test]
    fn init_sipi_smi_nmi_are_refused_whatever_the_destination() {
        for (mode, name) in [
            (0b101, DeliveryMode::Init),
            (0b110, DeliveryMode::StartUp),
            (0b010, DeliveryMode::Smi),
            (0b100, DeliveryMode::Nmi),
            (0b001, DeliveryMode::LowestPriority),
            (0b111, DeliveryMode::Reserved),
        ] {
            for shorthand in 0..4u64 {
                assert_eq!(
                    decide(icr(1, mode, 0x08) | (shorthand << 18), &CPUS),
                    IpiDecision::Refused(IpiRefusal::DeliveryMode(name))
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
        assert_eq!(
            decide(icr(7, 0, 0x40), &CPUS),
            IpiDecision::Refused(IpiRefusal::ForeignDestination(7))
        );
        assert_eq!(
            decide(icr(1, 0, 0x40) | DESTINATION_LOGICAL, &CPUS),
            IpiDecision::Refused(IpiRefusal::LogicalDestination)
        );
        assert_eq!(
            decide(icr(1, 0, 3), &CPUS),
            IpiDecision::Refused(IpiRefusal::IllegalVector)
        );
        assert_eq!(
            decide(icr(1, 0, 0x40) | (1 << 13), &CPUS),
            IpiDecision::Invalid
        );
    }
}
