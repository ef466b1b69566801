//! NMI exits (pin-based NMI exiting, SDM Vol. 3C 26.2): the hypervisor's own NMIs carry EPT
//! shootdowns and lock propagation (`smp::shootdown`); any other NMI belonged to the guest and
//! is delivered to it as it would have been natively.

use super::Resume;
use crate::vmx::vmcs::Vmcs;
use x86::vmx::vmcs::{control, ro};

/// VM-exit interruption information (SDM Vol. 3C 25.9.2, Table 25-19): type in bits 10:8
/// (2 = NMI), valid bit 31.
const TYPE_MASK: u64 = 0b111 << 8;
const TYPE_NMI: u64 = 2 << 8;
const VALID: u64 = 1 << 31;
const VECTOR_NMI: u64 = 2;

/// True if this exception-or-NMI exit was an NMI.
pub fn is_nmi(vmcs: &Vmcs) -> bool {
    let info = vmcs.get(ro::VMEXIT_INTERRUPTION_INFO);
    info & VALID != 0 && info & TYPE_MASK == TYPE_NMI
}

pub fn handle(vmcs: &Vmcs, slot: usize) -> Resume {
    if !crate::smp::shootdown::acknowledge(slot) {
        // Not ours: inject it (VM-entry interruption information, 25.8.3, type NMI).
        vmcs.set(
            control::VMENTRY_INTERRUPTION_INFO_FIELD,
            VECTOR_NMI | TYPE_NMI | VALID,
        );
    }
    Resume::Unchanged
}
