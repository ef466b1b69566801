//! AP bring-up by the hypervisor (SDM Vol. 3A 8.4.4.1 "Typical BSP Initialization Sequence"):
//! the boot CPU sends each AP a targeted INIT-SIPI-SIPI from VMX root; the AP runs the
//! trampoline into long mode on the hypervisor's page tables, turns VMX on, switches its local
//! APIC to x2APIC mode and parks in VMX root until the guest asks for a vCPU. From then on no
//! CPU runs outside the hypervisor, and an INIT sent to a CPU in VMX root is blocked by the
//! hardware (SDM Vol. 3C 26.2 "INIT signals are blocked in VMX root operation").
#![allow(unsafe_code)]

use crate::arch::{ap_trampoline, apic, descriptors, host_paging, instructions};
use crate::cpus::{self, CpuState, CPUS};
use crate::frames::{FrameAllocator, FRAME_SIZE};
use crate::handoff::HandOff;
use crate::vmx::enable;
use core::sync::atomic::Ordering;
use rampart_boot_info::MAX_CPUS;

/// 64 KiB per AP: start-up, parking, then its VM-exit stack.
const STACK_FRAMES: u64 = 16;
/// ICR values (SDM Vol. 3A 11.6.1, Figure 11-12): INIT and start-up delivery modes, level
/// assert. The SIPI vector is the trampoline's page number.
const ICR_INIT: u32 = (0b101 << 8) | (1 << 14);
const ICR_STARTUP: u32 = (0b110 << 8) | (1 << 14);
/// Waits of the SDM's sequence (10 ms after INIT, 200 us after each SIPI) as TSC cycles,
/// generous for CPUs up to a few GHz; Bochs's TSC counts instructions.
const AFTER_INIT_CYCLES: u64 = 10_000_000;
const AFTER_SIPI_CYCLES: u64 = 1_000_000;
/// How long an AP may take from the first SIPI to parking in VMX root, per attempt.
const ONLINE_TIMEOUT_CYCLES: u64 = 200_000_000;
/// One INIT-SIPI-SIPI, then one retry.
pub const ATTEMPTS: usize = 2;
/// The trampoline loads CR3 from 32-bit code.
const BELOW_4G: u64 = 1 << 32;

/// Registers the boot CPU (slot 0) and brings every AP of `handoff.cpus` into VMX root, or
/// leaves it `Failed` in [`CPUS`]; `Err` says why no AP was tried.
///
/// # Safety
/// On the boot CPU in VMX root, after [`descriptors::install`], with the host page tables at
/// `host_cr3` active and `crate::state` recorded; `handoff.ap_trampoline` is a guest page the
/// guest has not run on yet.
pub unsafe fn start_aps(
    handoff: &HandOff,
    frames: &mut FrameAllocator,
    host_cr3: u64,
) -> Result<(), &'static str> {
    let ids = handoff.cpus.iter().flatten();
    let boot = &CPUS[0];
    boot.apic_id.store(apic::apic_id(), Ordering::Relaxed);
    boot.set_state(CpuState::Running);
    if ids.clone().count() <= 1 {
        return Err("one CPU");
    }
    if handoff.ap_trampoline == 0 {
        return Err("no start-up page below 1 MiB");
    }
    if host_cr3 >= BELOW_4G {
        return Err("host page tables above 4 GiB");
    }
    // SAFETY: the page is guest RAM the guest has not run on (caller contract).
    unsafe { ap_trampoline::install(handoff.ap_trampoline) };
    let boot_id = boot.apic_id.load(Ordering::Relaxed);
    for (index, &apic_id) in ids.filter(|&&id| id != boot_id).enumerate() {
        let cpu = &CPUS[index + 1];
        cpu.apic_id.store(apic_id, Ordering::Relaxed);
        // SAFETY: forwarded contract; the slot is unused so far.
        unsafe { start_one(index + 1, handoff.ap_trampoline, frames, host_cr3) };
    }
    Ok(())
}

/// Brings up the AP whose APIC ID is in `slot`: it ends `Parked` in VMX root, or `Failed`.
unsafe fn start_one(slot: usize, trampoline: u64, frames: &mut FrameAllocator, host_cr3: u64) {
    let cpu = &CPUS[slot];
    let apic_id = cpu.apic_id.load(Ordering::Relaxed);
    let vector = (trampoline / FRAME_SIZE) as u32;
    let (Some(stack), Some(vmxon), Some(vmcs)) = (
        frames.allocate(STACK_FRAMES),
        // SAFETY: the allocator hands out identity-mapped frames of the reserved range.
        unsafe { host_paging::zeroed_frame(frames) },
        // SAFETY: as above.
        unsafe { host_paging::zeroed_frame(frames) },
    ) else {
        cpu.set_state(CpuState::Failed);
        return;
    };
    let stack_top = stack + STACK_FRAMES * FRAME_SIZE;
    cpu.stack_top.store(stack_top, Ordering::Relaxed);
    cpu.vmxon_region.store(vmxon, Ordering::Relaxed);
    cpu.vmcs_region.store(vmcs, Ordering::Relaxed);
    cpu.set_state(CpuState::Starting);
    let params = ap_trampoline::Params {
        cr3: host_cr3,
        stack_top,
        entry: ap_entry as *const () as u64,
        argument: slot as u64,
    };
    // SAFETY: the trampoline is installed; no AP reads the parameters now (APs start one at a
    // time and the previous one has parked or been given up).
    unsafe { ap_trampoline::set_params(trampoline, params) };
    for _ in 0..ATTEMPTS {
        // SAFETY: x2APIC is on (boot.rs turns it on before); the target is an AP the firmware
        // parked, which this sequence is meant to restart into our trampoline.
        unsafe {
            apic::send_ipi(apic_id, ICR_INIT);
            instructions::delay_cycles(AFTER_INIT_CYCLES);
            for _ in 0..2 {
                apic::send_ipi(apic_id, ICR_STARTUP | vector);
                instructions::delay_cycles(AFTER_SIPI_CYCLES);
            }
        }
        if instructions::spin_until(ONLINE_TIMEOUT_CYCLES, || cpu.state() == CpuState::Parked) {
            return;
        }
    }
    // A late AP finds the slot Failed and halts in VMX root for good (see `ap_entry`); one that
    // parked just now keeps its slot.
    cpu.transition(CpuState::Starting, CpuState::Failed);
}

/// The AP's first Rust code, on its own stack, from the trampoline (RDI = its slot).
extern "sysv64" fn ap_entry(slot: u64) -> ! {
    let slot = (slot as usize).min(MAX_CPUS - 1);
    let cpu = &CPUS[slot];
    // SAFETY: `install` filled the tables before any AP started; `slot` is this AP's own (the
    // boot CPU hands each slot to one AP); interrupts are off since the trampoline's CLI.
    unsafe {
        descriptors::load(slot);
        cpus::set_this_cpu(slot);
    }
    crate::arch::instructions::enable_host_xsave();
    let caps = &crate::state::get().caps;
    let vmxon = cpu.vmxon_region.load(Ordering::Relaxed);
    let vmcs = cpu.vmcs_region.load(Ordering::Relaxed);
    // SAFETY: CPL0, interrupts off; both regions are this AP's zeroed frames (`start_one`).
    let entered = unsafe { enable::enter_with(caps, vmxon, vmcs) }.is_ok();
    // Same APIC mode as the boot CPU (x2APIC wherever the CPU has it).
    apic::enable_x2apic();
    if !entered || !cpu.transition(CpuState::Starting, CpuState::Parked) {
        instructions::halt_forever();
    }
    park(slot)
}

/// Waits in VMX root, halted, until a vCPU start is requested for this CPU.
fn park(slot: usize) -> ! {
    loop {
        if CPUS[slot].state() == CpuState::StartRequested {
            super::vcpu_start::launch_here(slot);
        }
        instructions::halt_until_nmi();
    }
}
