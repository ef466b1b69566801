//! The interprocessor-interrupt attacks: what a compromised kernel could do with the local
//! APIC's ICR if nothing checked it. Natively the woken CPU or the SMI handler writes a marker
//! byte into kernel read-only data by physical address; under Rampart the ICR write is dropped
//! and audited (`ipi-delivery`), so the marker stays as it was.
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless natively

use super::verdict::Attempt;
use crate::arch::{attack, hypercall, lapic};
use crate::mm::layout::{phys_to_virt, KERNEL_VIRT_OFFSET};
use crate::process;
use crate::{smp, time};
use rampart_kernel_abi::syscall::STATE_SLEEPING;

/// The default SMBASE (SDM Vol. 3C 32.5): nothing relocates it where no SMM code is installed
/// (OVMF without SMM), and the kernel keeps [`SMRAM_WINDOW`] out of its frame allocator.
pub(super) const DEFAULT_SMBASE: u64 = 0x30000;
/// The default SMRAM: handler at SMBASE + 0x8000, state save area at SMBASE + 0xFE00.
pub const SMRAM_WINDOW: (u64, u64) = (DEFAULT_SMBASE, DEFAULT_SMBASE + 0x10000);
/// Ticks to wait for a payload's marker (or for a CPU to park).
pub(super) const WAIT_TICKS: u64 = 20;

/// Physical address of marker `index`.
pub(super) fn marker_physical(index: usize) -> u64 {
    attack::marker_address(index) - KERNEL_VIRT_OFFSET
}

/// Sleeps (this kernel thread) until `done` holds or `ticks` ticks passed; returns `done()`.
pub(super) fn wait_for(ticks: u64, done: impl Fn() -> bool) -> bool {
    for _ in 0..ticks {
        if done() {
            return true;
        }
        process::block_current(STATE_SLEEPING, None, Some(time::ticks() + 1));
    }
    done()
}

/// Audit records so far (0 without Rampart).
pub(super) fn audit_count() -> i64 {
    hypercall::rampart().map_or(0, |r| r.audit_count())
}

/// The outcome once the IPI is sent: the marker appeared (natively: put it back through the
/// direct map), or the hypervisor dropped it (audit count rose), or nothing happened.
pub(super) fn outcome(marker: usize, audits_before: i64, not_taken: &'static str) -> Attempt {
    let written = wait_for(WAIT_TICKS, || {
        attack::read_marker(marker) == attack::MARKER_VALUE
    });
    if written {
        // SAFETY: natively the direct map is writable; the marker goes back to 0 (its value in
        // the image). Under Rampart it never changed, so this is not reached.
        unsafe { attack::write_byte(phys_to_virt(marker_physical(marker)), 0) };
        return Attempt::Done;
    }
    if audit_count() > audits_before {
        return Attempt::NoEffect;
    }
    Attempt::NotApplicable(not_taken)
}

/// INIT-SIPI-SIPI to another CPU, pointed at a payload that writes the marker. The target is
/// parked first (it runs nothing), and natively it is lost for good: this runs last. Under
/// Rampart the INIT is dropped (one audit record); then no SIPI is sent and the CPU returns.
pub fn init_sipi_wake() -> Attempt {
    let Some((index, apic_id)) = smp::request_park() else {
        return Attempt::NotApplicable("one CPU");
    };
    if !wait_for(WAIT_TICKS, || smp::is_parked(index)) {
        smp::unpark(index);
        return Attempt::NotApplicable("the CPU did not park");
    }
    let before = audit_count();
    let page = crate::boot::BOOT_INFO
        .get()
        .map_or(0, |info| info.ap_trampoline);
    if page != 0 {
        // SAFETY: natively the AP trampoline page is reserved for the kernel and unused once
        // every AP runs; the marker is in the kernel image, below 4 GiB.
        unsafe { attack::install_wake_payload(page, marker_physical(attack::MARKER_WAKE)) };
    }
    // SAFETY: the destination is parked (it runs nothing and holds nothing): natively INIT
    // costs the kernel that CPU only; under Rampart the write is dropped.
    unsafe { lapic::send_ipi(apic_id, lapic::command::INIT) };
    if audit_count() > before {
        smp::unpark(index);
        return outcome(attack::MARKER_WAKE, before, "no effect");
    }
    if page == 0 {
        smp::unpark(index);
        return Attempt::NotApplicable("no page below 1 MiB for the payload");
    }
    let _ = wait_for(1, || false);
    // SAFETY: as above; the payload is installed at `page`.
    unsafe {
        lapic::send_ipi(apic_id, lapic::command::startup((page >> 12) as u8));
        lapic::send_ipi(apic_id, lapic::command::startup((page >> 12) as u8));
    }
    outcome(
        attack::MARKER_WAKE,
        before,
        "the CPU did not run the payload",
    )
}

/// An SMI to this CPU with (natively) a handler at the default SMBASE that writes the marker
/// and resumes (RSM). Natively that needs SMIs to reach an SMBASE nobody relocated; under
/// Rampart the ICR write is dropped (one audit record).
pub fn smi_self() -> Attempt {
    let before = audit_count();
    // Under Rampart the default SMBASE area is the hypervisor's (absent from EPT, with an
    // RSM-only handler): writing it is the `hv-write` attack's business; this one tries the ICR.
    if hypercall::rampart().is_none() {
        // SAFETY: the default SMRAM window is kept out of the frame allocator in kernels with
        // the attack suite (boot), so the handler and the state save area overwrite nothing in
        // use.
        unsafe { attack::install_smi_handler(DEFAULT_SMBASE, marker_physical(attack::MARKER_SMI)) };
    }
    // SAFETY: an SMI to this CPU runs the handler above (which only writes the marker and
    // resumes) or, under Rampart, is dropped.
    unsafe { lapic::send_ipi(lapic::id(), lapic::command::SMI) };
    outcome(attack::MARKER_SMI, before, "no marker written")
}
