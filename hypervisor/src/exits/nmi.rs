//! NMI exits (pin-based NMI exiting, SDM Vol. 3C 26.2): the hypervisor's own NMIs carry EPT
//! shootdowns and lock propagation (`smp::shootdown`); any other NMI belonged to the guest and
//! is delivered to it as it would have been natively.

use super::resume::{clear_interruptibility, Resume, INTERRUPTION_VALID, NMI_INTERRUPTION};
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::Ordering;
use x86::vmx::vmcs::{control, ro};

/// VM-exit interruption information (SDM Vol. 3C 25.9.2, Table 25-19): type in bits 10:8
/// (2 = NMI), valid bit 31.
const TYPE_MASK: u64 = 0b111 << 8;
const TYPE_NMI: u64 = 2 << 8;
/// Guest interruptibility state bit 3: blocking by NMI (SDM Vol. 3C 25.4.2, Table 25-3).
const BLOCKING_BY_NMI: u64 = 1 << 3;

/// True if this exception-or-NMI exit was an NMI.
pub fn is_nmi(vmcs: &Vmcs) -> bool {
    let info = vmcs.get(ro::VMEXIT_INTERRUPTION_INFO);
    info & INTERRUPTION_VALID != 0 && info & TYPE_MASK == TYPE_NMI
}

/// An NMI exit: the hypervisor's own NMI is acknowledged, the guest's is injected.
pub fn handle(vmcs: &Vmcs, slot: usize) -> Resume {
    crate::cpus::halt_if_stopping();
    crate::arch::instructions::unblock_nmis();
    let ours = crate::cpus::take_hypervisor_nmi(slot);
    crate::smp::shootdown::acknowledge(slot);
    if ours {
        // The guest never saw this NMI, so it must not come back blocked: the guest state saved
        // at the exit shows blocking by NMI (seen on Bochs 2.7), and the next VM entry would
        // then mask every later NMI until a guest IRET from an NMI handler that never ran.
        clear_interruptibility(vmcs, BLOCKING_BY_NMI);
    } else {
        // Not ours: inject it (VM-entry interruption information, 25.8.3, type NMI).
        vmcs.set(control::VMENTRY_INTERRUPTION_INFO_FIELD, NMI_INTERRUPTION);
    }
    Resume::Unchanged
}

/// Injects a guest NMI that arrived while the hypervisor ran (`smp::nmi_in_root`), unless the
/// coming VM entry already injects an event (then it waits for the next exit).
pub fn deliver_pending(vmcs: &Vmcs, slot: usize) {
    let pending = &crate::cpus::CPUS[slot].guest_nmi_pending;
    if pending.load(Ordering::SeqCst)
        && vmcs.get(control::VMENTRY_INTERRUPTION_INFO_FIELD) & INTERRUPTION_VALID == 0
    {
        pending.store(false, Ordering::SeqCst);
        vmcs.set(control::VMENTRY_INTERRUPTION_INFO_FIELD, NMI_INTERRUPTION);
    }
}
