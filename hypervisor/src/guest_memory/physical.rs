//! Guest-physical memory as the hypervisor may touch it on the guest's behalf: through the
//! host's identity map, never inside the hypervisor's ranges, only where EPT maps it.
#![allow(unsafe_code)]

use super::walker::{PhysicalMemory, WalkError};
use crate::ept::entry::MemoryType;
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
        Self::check_in(gpa, len, || state::EPT.try_lock())
    }

    /// [`Self::check`] for hypercalls, which wait for the EPT lock: another vCPU's policy
    /// request holds it only briefly, and must not make a request fail.
    pub fn check_waiting(&self, gpa: u64, len: u64) -> Result<(), WalkError> {
        Self::check_in(gpa, len, || Some(state::EPT.lock()))
    }

    fn check_in<'a>(
        gpa: u64,
        len: u64,
        lock: impl FnOnce() -> Option<
            spin::MutexGuard<'a, Option<crate::ept::builder::Ept<state::EptFrames>>>,
        >,
    ) -> Result<(), WalkError> {
        let range = crate::handoff::PhysRange::new(gpa, len.max(1));
        if state::get()
            .hypervisor_ranges
            .iter()
            .any(|r| r.overlaps(&range))
        {
            return Err(WalkError::HypervisorMemory(gpa));
        }
        let mut ept = lock().ok_or(WalkError::NotInEpt(gpa))?;
        let ept = ept.as_mut().ok_or(WalkError::NotInEpt(gpa))?;
        match ept.translate(gpa) {
            Some(t) if t.host_physical == gpa && t.memory_type == Some(MemoryType::WriteBack) => {
                Ok(())
            }
            Some(t) if t.host_physical == gpa => Err(WalkError::DeviceMemory(gpa)),
            _ => Err(WalkError::NotInEpt(gpa)),
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
