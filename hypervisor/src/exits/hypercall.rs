//! VMCALL: the hypercall interface of rampart-hv-abi.

use super::{guest_cpl, stop, Exception, Resume};
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use rampart_hv_abi::{Hypercall, HypercallError, ABI_VERSION};

pub fn handle(vmcs: &Vmcs, regs: &mut GuestRegisters) -> Resume {
    // Hypercalls are for the guest kernel only: from user mode, VMCALL faults as natively.
    if guest_cpl(vmcs) != 0 {
        return Resume::Inject(Exception::InvalidOpcode);
    }
    regs.rax = match Hypercall::from_raw(regs.rax) {
        Some(Hypercall::Version) => u64::from(ABI_VERSION),
        Some(Hypercall::LogExitStats) => {
            crate::hvlog!(crate::console::ERROR, "exits: {}", state::STATS);
            0
        }
        Some(Hypercall::Shutdown) => stop::shutdown(),
        None => HypercallError::NotSupported as i64 as u64,
    };
    Resume::NextInstruction
}
