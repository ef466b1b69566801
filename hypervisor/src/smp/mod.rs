//! Every CPU under the hypervisor: the per-CPU table, AP bring-up into VMX root, vCPU starts on
//! the guest's request, and EPT shootdowns across vCPUs.

pub mod bringup;
pub mod cpus;
pub mod shootdown;
pub mod vcpu_start;

pub use cpus::{this_cpu, CpuState, CPUS};

/// The host NMI handler's body: an NMI reaches a CPU in VMX root either to wake it from its
/// parking HLT (a vCPU start) or to make it drop stale EPT translations; both are served by
/// looking at what is pending, so a spurious NMI does nothing.
pub extern "sysv64" fn nmi_in_root() {
    shootdown::acknowledge(this_cpu());
}
