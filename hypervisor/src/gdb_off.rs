//! Without the `gdb` feature (the production build) there is no debugger: these are the few
//! calls the rest of the hypervisor makes into the stub, answering "not attached". #BP, #DB,
//! monitor-trap-flag and preemption-timer exits are never enabled, so they cannot occur.

use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;

/// `gdb = on` in a production build: said once, and the guest runs without a debugger.
pub fn wait_for_debugger(_vmcs: &Vmcs, _regs: &mut GuestRegisters) {
    log::warn!(
        "gdb: boot.cfg asks for a debugger, but this is a production build without the GDB stub"
    );
}

pub fn audit_mark() -> Option<u64> {
    None
}

pub fn stop_if_blocked(_vmcs: &Vmcs, _regs: &mut GuestRegisters, _before: Option<u64>) {}

pub fn prepare_vcpu(_vmcs: &Vmcs) {}

/// All-stop across vCPUs does not exist without a debugger.
pub mod vcpus {
    use super::{GuestRegisters, Vmcs};

    pub fn park_if_halted(_vmcs: &Vmcs, _regs: &mut GuestRegisters, _slot: usize) {}
}
