//! Tightening every vCPU before a hypercall returns: after rights are removed from the shared
//! EPT, or a lock is taken, each running vCPU must drop its cached EPT translations (INVEPT
//! works on the executing CPU only, SDM Vol. 3C 29.4.3.1) and pick up the new controls before
//! the caller continues. The caller bumps a generation and sends an NMI to every other running
//! vCPU (NMI exiting makes it a VM exit; in VMX root the host NMI handler serves it); each
//! acknowledges by recording the generation. No acknowledgement within the timeout stops the
//! hypervisor: failing closed, never continuing with a possibly stale translation.
#![allow(unsafe_code)]

use crate::arch::instructions::{self, invept, InveptType};
use crate::cpus::{send_nmi, CpuState, CPUS};
use crate::vmx::caps::ept_cap;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bumped by every tightening.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// How long to wait for all acknowledgements; an NMI is re-sent every `RESEND_CYCLES`.
const TIMEOUT_CYCLES: u64 = 500_000_000;
const RESEND_CYCLES: u64 = 5_000_000;

/// Makes every running vCPU drop stale EPT translations and apply the current locks; returns
/// once all have acknowledged. Call after the EPT change and lock flags are in place.
pub fn tighten_all() {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    let me = crate::cpus::this_cpu();
    acknowledge(me);
    let waiting = || waiting_for(generation, me);
    if let Err(pending) = nmis_until_done(waiting, RESEND_CYCLES, TIMEOUT_CYCLES) {
        fatal!(
            "EPT shootdown: vCPU mask {pending:#x} did not acknowledge generation {generation} within {TIMEOUT_CYCLES} cycles; stopping rather than running with stale translations"
        );
    }
}

/// Sends NMIs to the CPUs in the mask `pending()` returns, again every `resend_cycles`, until
/// the mask is empty; after `timeout_cycles`, gives up with the mask still pending.
pub fn nmis_until_done(
    pending: impl Fn() -> u32,
    resend_cycles: u64,
    timeout_cycles: u64,
) -> Result<(), u32> {
    let started = instructions::rdtsc();
    loop {
        let mask = pending();
        if mask == 0 {
            return Ok(());
        }
        if instructions::rdtsc().wrapping_sub(started) > timeout_cycles {
            return Err(mask);
        }
        (0..CPUS.len())
            .filter(|slot| mask & (1 << slot) != 0)
            .for_each(send_nmi);
        instructions::spin_until(resend_cycles, || pending() == 0);
    }
}

/// Bit mask of the running vCPUs other than `me` that have not acknowledged `generation`.
fn waiting_for(generation: u64, me: usize) -> u32 {
    CPUS.iter()
        .enumerate()
        .filter(|&(slot, cpu)| {
            slot != me
                && cpu.state() == CpuState::Running
                && cpu.ept_generation.load(Ordering::SeqCst) < generation
        })
        .fold(0, |mask, (slot, _)| mask | 1 << slot)
}

/// Serves a tightening on this CPU if one is pending: INVEPT and the locks' controls on its
/// VMCS. Returns true if there was one.
pub fn acknowledge(slot: usize) -> bool {
    let cpu = &CPUS[slot];
    let generation = GENERATION.load(Ordering::SeqCst);
    if cpu.ept_generation.load(Ordering::SeqCst) >= generation {
        return false;
    }
    if cpu.state() == CpuState::Running {
        flush_local();
        crate::locks::vmcs::apply_to_current_vmcs();
    }
    cpu.ept_generation.store(generation, Ordering::SeqCst);
    true
}

/// INVEPT of the guest's EPT on this CPU (SDM Vol. 3C 29.4.3.3).
pub fn flush_local() {
    let s = crate::state::get();
    let kind = if s.caps.ept_has(ept_cap::INVEPT_SINGLE_CONTEXT) {
        InveptType::SingleContext
    } else {
        InveptType::AllContext
    };
    // SAFETY: VMX is on on every CPU that runs hypervisor code after start-up; `check` at
    // boot required INVEPT support (single- or all-context), and `eptp` is the guest's EPT.
    unsafe { invept(kind, s.eptp) }
}
