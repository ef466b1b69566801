//! Every CPU under the hypervisor: the per-CPU table, AP bring-up into VMX root, vCPU starts on
//! the guest's request, and EPT shootdowns across vCPUs.

pub mod boot_cpus;
pub mod bringup;
pub mod cpus;
pub mod nmi_ledger;
pub mod quiet;
pub mod shootdown;
pub mod vcpu_start;

pub use cpus::{this_cpu, CpuState, CPUS};

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once the hypervisor stops: every CPU that sees it halts.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The host NMI handler's body: an NMI reaches a CPU in VMX root to wake it from its parking
/// HLT (a vCPU start), to make it drop stale EPT translations, or to stop it; all are served by
/// looking at what is pending, so a spurious NMI does nothing.
pub extern "sysv64" fn nmi_in_root() {
    halt_if_stopping();
    let slot = this_cpu();
    if !shootdown::take_hypervisor_nmi(slot) && CPUS[slot].state() == CpuState::Running {
        CPUS[slot].guest_nmi_pending.store(true, Ordering::SeqCst);
    }
    shootdown::acknowledge(slot);
}

/// Halts this CPU for good if the hypervisor is stopping.
pub fn halt_if_stopping() {
    if STOPPING.load(Ordering::SeqCst) {
        crate::arch::instructions::halt_forever();
    }
}

/// Stops every other CPU (a clean stop must stop the whole machine, not one vCPU): marks the
/// stop, then sends each CPU under the hypervisor an NMI, which ends in [`halt_if_stopping`].
pub fn halt_others() {
    if STOPPING.swap(true, Ordering::SeqCst) {
        return;
    }
    let me = this_cpu();
    for (slot, cpu) in CPUS.iter().enumerate() {
        if slot != me && cpu.state().in_vmx_root() {
            shootdown::send_nmi(slot);
        }
    }
}
