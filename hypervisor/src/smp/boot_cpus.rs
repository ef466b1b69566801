//! The boot CPU's part of putting every CPU under the hypervisor: APIC mode, AP bring-up
//! (`bringup`), the boot log, and the guest's CPU list in its BootInfo.
#![allow(unsafe_code)]

use super::bringup::{self, ATTEMPTS};
use crate::cpus::{CpuState, CPUS};
use crate::frames::FrameAllocator;
use crate::handoff::HandOff;
use core::sync::atomic::Ordering;
use rampart_boot_info::{ApicIds, BootInfo, MAX_CPUS};

/// Switches the boot CPU's APIC to x2APIC mode, brings every AP into VMX root, and tells the
/// guest (BootInfo `apic_ids`) which CPUs it may start with `StartVcpu`.
pub fn bring_up_all(handoff: &HandOff, frames: &mut FrameAllocator) {
    if !crate::arch::apic::enable_x2apic() {
        // Every CPU still ends up in VMX root (where INIT is blocked and SIPI ignored) and SMIs
        // run the RSM stub, but ICR writes through the xAPIC page are not checked.
        log::warn!("no x2APIC: the guest's IPIs go through the xAPIC page unchecked (INIT/SIPI reach only CPUs in VMX root; an SMI runs the RSM stub)"
        );
    }
    // SAFETY: reading CR3 has no side effects.
    let host_cr3 = unsafe { x86::controlregs::cr3() };
    // SAFETY: boot CPU, VMX root, host tables and paging active, state recorded; the trampoline
    // page is guest RAM the guest has not run on.
    let started = unsafe { bringup::start_aps(handoff, frames, host_cr3) };
    let online: heapless::Vec<u32, MAX_CPUS> = crate::cpus::online().collect();
    log::info!(
        "CPUs: {} online (APIC IDs {})",
        online.len(),
        ApicIds(&online)
    );
    if let Err(reason) = started {
        log::info!("APs not started: {reason}");
    }
    let failed = CPUS.iter().filter(|cpu| cpu.state() == CpuState::Failed);
    for id in failed
        .clone()
        .map(|cpu| cpu.apic_id.load(Ordering::Relaxed))
    {
        log::error!("CPU with APIC ID {id} did not reach VMX root after {ATTEMPTS} INIT-SIPI-SIPI attempts; left out of the guest's CPUs");
    }
    log::info!("CPUs failed: {}", failed.count());
    // Rewrites the BootInfo's CPU list (the online CPUs first, the rest zero).
    let mut apic_ids = [0; MAX_CPUS];
    apic_ids[..online.len()].copy_from_slice(&online);
    let info = handoff.guest.boot_info as *mut BootInfo;
    // SAFETY: the BootInfo lies in guest RAM prepared by the firmware; the guest has not run,
    // and no reference into it is used after this write (the caller's is only read before).
    unsafe {
        (*info).apic_ids = apic_ids;
        (*info).cpu_count = online.len() as u32;
    }
}
