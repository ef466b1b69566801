//! Guest-physical memory as the hypervisor may touch it on the guest's behalf: through the
//! host's identity map, never inside the hypervisor's ranges, only where EPT maps it.
#![allow(unsafe_code)]

use crate::ept::entry::MemoryType;
use crate::guest_paging::walker::{PhysicalMemory, WalkError};
use crate::state;

/// Guest-physical memory reached through the host's identity map, refusing the hypervisor's
/// ranges, anything EPT does not map (memory beyond RAM) and device memory (EPT memory type
/// uncacheable: MMIO such as the local APIC; RAM is write-back).
pub struct GuestPhysical;

impl GuestPhysical {
    /// Ok if `[gpa, gpa + len)` (within one 4 KiB page) is guest memory.
    pub fn check(&self, gpa: u64, len: u64) -> Result<(), WalkError> {
        // The lock may be held by an exit handler that stopped into the debugger (a policy
        // violation): then the stub cannot vouch for the address and refuses it.
        Self::check_in(gpa, len, false)
    }

    /// [`Self::check`] for hypercalls, which wait for the EPT lock: another vCPU's policy
    /// request holds it only briefly, and must not make a request fail.
    pub fn check_waiting(&self, gpa: u64, len: u64) -> Result<(), WalkError> {
        Self::check_in(gpa, len, true)
    }

    fn check_in(gpa: u64, len: u64, wait_for_lock: bool) -> Result<(), WalkError> {
        let range = crate::handoff::PhysRange::new(gpa, len.max(1));
        let hypervisor = &state::get().hypervisor_ranges;
        if hypervisor.iter().any(|r| r.overlaps(&range)) {
            return Err(WalkError::HypervisorMemory(gpa));
        }
        let ept = state::EPT
            .try_lock()
            .or_else(|| wait_for_lock.then(|| state::EPT.lock()));
        let mut ept = ept.ok_or(WalkError::NotInEpt(gpa))?;
        let ept = ept.as_mut().ok_or(WalkError::NotInEpt(gpa))?;
        let identity = ept.translate(gpa).filter(|t| t.host_physical == gpa);
        match identity.map(|t| t.memory_type) {
            Some(Some(MemoryType::WriteBack)) => Ok(()),
            Some(_) => Err(WalkError::DeviceMemory(gpa)),
            None => Err(WalkError::NotInEpt(gpa)),
        }
    }
}

impl PhysicalMemory for GuestPhysical {
    fn read_u64(&self, gpa: u64) -> Result<u64, WalkError> {
        self.check(gpa, 8)?;
        // Another vCPU may change the bytes meanwhile: a volatile read of plain integers is
        // still sound, and every address the walk follows is checked again.
        // SAFETY: `check` found the 8 bytes in guest RAM mapped by EPT and outside the
        // hypervisor; the host identity-maps all EPT-mapped memory.
        Ok(unsafe { core::ptr::read_volatile(gpa as *const u64) })
    }
}
