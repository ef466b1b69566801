//! Starting a vCPU on a parked CPU (`StartVcpu` hypercall, in the style of Hyper-V's
//! HvCallStartVirtualProcessor and Xen's VCPUOP_up): the calling vCPU's exit handler checks
//! the request and hands it to the target CPU, which builds its VMCS and launches. No guest
//! ever runs in real mode and no INIT or SIPI reaches a CPU after boot.
#![allow(unsafe_code)]

use crate::arch::{descriptors, vm_entry};
use crate::cpus::{self, CpuState, CPUS};
use crate::guest_memory::GuestPhysical;
use crate::guest_paging::walker;
use crate::handoff::GuestEntry;
use crate::policy::SegmentKind;
use crate::state;
use crate::vcpu::GuestRegisters;
use crate::vmx::setup::{self, HostSetup, Structures};
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::Ordering;
use rampart_hv_abi::{HypercallError, HypercallResult};
use x86::vmx::vmcs::{control, guest};

/// What every vCPU's VMCS shares, recorded by the boot CPU before its launch.
#[derive(Clone, Copy, Debug)]
pub struct Template {
    pub structures: Structures,
    pub host_cr3: u64,
}

pub static TEMPLATE: spin::Once<Template> = spin::Once::new();

/// The placeholder TSS of a new vCPU: VM entry needs a usable TR (SDM Vol. 3C 27.3.1.2); the
/// vCPU's first instructions load its own.
const PLACEHOLDER_TSS_LIMIT: u32 = 0x67;
/// How long the caller waits for the target CPU to take the request, re-sending the NMI that
/// wakes it every `WAKE_RESEND_CYCLES`.
const TAKE_TIMEOUT_CYCLES: u64 = 200_000_000;
const WAKE_RESEND_CYCLES: u64 = 2_000_000;
const PAGE_OFFSET_MASK: u64 = 0xfff;

/// Why a start request is refused; each maps to a documented hypercall error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartRefusal {
    /// No CPU with that APIC ID is parked under the hypervisor.
    UnknownCpu,
    /// RIP does not translate (under the requested CR3) into measured kernel text.
    RipNotKernelText,
    /// CR3 is unaligned or outside guest RAM.
    BadCr3,
    /// RSP is not canonical.
    BadRsp,
    /// The CPU is already running a vCPU (or is the caller).
    AlreadyStarted,
    /// A lock was taken: vCPUs must all be started before locking.
    AfterLock,
    /// The CPU did not take the request in time.
    NoAnswer,
}

impl StartRefusal {
    pub fn error(self) -> HypercallError {
        match self {
            Self::UnknownCpu | Self::RipNotKernelText | Self::BadCr3 => HypercallError::OutOfRange,
            Self::BadRsp => HypercallError::InvalidArgument,
            Self::AlreadyStarted | Self::AfterLock | Self::NoAnswer => HypercallError::Denied,
        }
    }
}

/// `StartVcpu` (the arguments were read once from the saved registers, which no other vCPU
/// can change).
pub fn handle(vmcs: &Vmcs, apic_id: u64, rip: u64, rsp: u64, cr3: u64) -> HypercallResult {
    request(vmcs, apic_id, rip, rsp, cr3)
        .map(|()| 0)
        .map_err(|refusal| {
            log::warn!("StartVcpu(APIC ID {apic_id:#x}, RIP={rip:#x}) refused: {refusal:?}");
            refusal.error()
        })
}

fn request(vmcs: &Vmcs, apic_id: u64, rip: u64, rsp: u64, cr3: u64) -> Result<(), StartRefusal> {
    if crate::locks::entry_state_locked() {
        return Err(StartRefusal::AfterLock);
    }
    let apic_id = u32::try_from(apic_id).map_err(|_| StartRefusal::UnknownCpu)?;
    let slot = cpus::index_of(apic_id).ok_or(StartRefusal::UnknownCpu)?;
    if !walker::is_canonical(rsp) {
        return Err(StartRefusal::BadRsp);
    }
    if cr3 & PAGE_OFFSET_MASK != 0 || GuestPhysical.check(cr3, 4096).is_err() {
        return Err(StartRefusal::BadCr3);
    }
    let cr4 = vmcs.get(guest::CR4);
    let text = walker::translate(&GuestPhysical, cr3, cr4, rip)
        .ok()
        .and_then(|mapping| state::get().layout.segment_at(mapping.gpa).copied())
        .is_some_and(|segment| segment.kind == SegmentKind::Text);
    if !text {
        return Err(StartRefusal::RipNotKernelText);
    }
    let cpu = &CPUS[slot];
    cpu.start_rip.store(rip, Ordering::Relaxed);
    cpu.start_rsp.store(rsp, Ordering::Relaxed);
    cpu.start_cr3.store(cr3, Ordering::Relaxed);
    if !cpu.transition(CpuState::Parked, CpuState::StartRequested) {
        return Err(StartRefusal::AlreadyStarted);
    }
    wake_and_wait(slot)
}

/// Sends NMIs to the parked CPU until it has taken the request (its HLT may have begun just
/// after it last looked, so one NMI is not enough).
fn wake_and_wait(slot: usize) -> Result<(), StartRefusal> {
    // Each NMI wakes the CPU from its parking HLT; the host NMI handler returns to its loop.
    let requested = || u32::from(CPUS[slot].state() == CpuState::StartRequested) << slot;
    super::shootdown::nmis_until_done(requested, WAKE_RESEND_CYCLES, TAKE_TIMEOUT_CYCLES)
        .map_err(|_| StartRefusal::NoAnswer)
}

/// Writes the launch VMCS of the vCPU in `host.cpu_slot` into `vmcs` (development builds first
/// check it against SDM chapter 27); a VMCS that cannot be written stops the hypervisor.
///
/// # Safety
/// `vmcs` is current; `structures` are hypervisor-owned and initialised (EPT leaves the
/// hypervisor out) and `host` names this CPU's own tables, an exit stack nothing else uses and
/// the exit stub (`setup::write_image`).
pub unsafe fn write_launch_vmcs(
    vmcs: &Vmcs,
    structures: &Structures,
    host: &HostSetup,
    entry: &GuestEntry,
) {
    let (s, cpu) = (state::get(), setup::host_cpu());
    let image = setup::launch_image(&s.caps, &s.controls, structures, host, &cpu, entry);
    #[cfg(feature = "gdb")]
    crate::vmx::entry_checks::before_launch(&image, &s.caps, host.cpu_slot, crate::stop::fatal);
    // SAFETY: delegated to the caller.
    if let Err(error) = unsafe { setup::write_image(vmcs, &image) } {
        fatal!("vCPU {}: {error}", host.cpu_slot);
    }
}

/// On the target CPU, in its parking loop: builds its VMCS from the template and the request,
/// and launches. Never returns; a VMCS that cannot be written stops the hypervisor.
pub fn launch_here(slot: usize) -> ! {
    let cpu = &CPUS[slot];
    let template = *TEMPLATE
        .get()
        .unwrap_or_else(|| fatal!("vCPU start before the boot CPU launched"));
    let entry = GuestEntry {
        rip: cpu.start_rip.load(Ordering::Relaxed),
        rsp: cpu.start_rsp.load(Ordering::Relaxed),
        boot_info: 0,
        cr3: cpu.start_cr3.load(Ordering::Relaxed),
        gdt_base: 0,
        gdt_limit: 0,
        tss_base: 0,
        tss_limit: PLACEHOLDER_TSS_LIMIT,
    };
    // SAFETY: `ap_entry` made this CPU's VMCS current (VMXON, VMCLEAR, VMPTRLD) and nothing
    // else runs on it.
    let vmcs = unsafe { Vmcs::assume_current() };
    let host = HostSetup {
        cr3: template.host_cr3,
        // GDT/IDT/TR were loaded by `ap_entry` for this slot; this only reads their addresses.
        tables: descriptors::tables_of(slot),
        exit_stack_top: cpu.stack_top.load(Ordering::Relaxed),
        exit_entry: vm_entry::vm_exit_entry as *const () as u64,
        cpu_slot: slot as u64,
    };
    // SAFETY: the structures are the shared, hypervisor-owned ones the boot CPU runs with;
    // `host` is this CPU's own tables and stack (the parking frames below are abandoned: the
    // stack is reused from its top by VM exits once the launch succeeds).
    unsafe { write_launch_vmcs(&vmcs, &template.structures, &host, &entry) };
    // Pinned CR4 bits hold on every vCPU from its first instruction.
    let pinned = crate::locks::pinned_cr4();
    for field in [guest::CR4, control::CR4_READ_SHADOW] {
        vmcs.set(field, vmcs.get(field) | pinned);
    }
    crate::gdb::prepare_vcpu(&vmcs);
    cpu.set_state(CpuState::Running);
    // Any tightening from now on waits for this CPU; catch up with those before it.
    super::shootdown::acknowledge(slot);
    super::shootdown::flush_local();
    let regs = GuestRegisters {
        rdi: u64::from(cpu.apic_id.load(Ordering::Relaxed)),
        ..GuestRegisters::default()
    };
    log::info!(
        "vCPU {slot} (APIC ID {}) launching: RIP={:#x} RSP={:#x} CR3={:#x}",
        regs.rdi,
        entry.rip,
        entry.rsp,
        entry.cr3
    );
    crate::cpus::quiet::entering_guest(slot);
    // SAFETY: the VMCS is complete; host RSP is the top of this CPU's own stack and host RIP
    // the exit stub; `regs` lives on this stack until VMLAUNCH has loaded it.
    unsafe { vm_entry::vm_launch(&regs) }
}
