//! Every CPU under the hypervisor: the per-CPU table, AP bring-up into VMX root, vCPU starts on
//! the guest's request, and EPT shootdowns across vCPUs.

pub mod boot_cpus;
pub mod bringup;
pub mod shootdown;
pub mod vcpu_start;

use crate::cpus::{this_cpu, CpuState, CPUS};

use core::sync::atomic::Ordering;

/// The host NMI handler's body: an NMI reaches a CPU in VMX root to wake it from its parking
/// HLT (a vCPU start), to make it drop stale EPT translations, or to stop it; all are served by
/// looking at what is pending, so a spurious NMI does nothing.
pub fn nmi_in_root() {
    crate::cpus::halt_if_stopping();
    let slot = this_cpu();
    if !crate::cpus::take_hypervisor_nmi(slot) && CPUS[slot].state() == CpuState::Running {
        CPUS[slot].guest_nmi_pending.store(true, Ordering::SeqCst);
    }
    shootdown::acknowledge(slot);
}
