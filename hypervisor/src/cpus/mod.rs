//! The per-CPU table: each CPU's APIC ID, where it stands (parked in VMX root, running a vCPU,
//! failed), its start request, and its resources.
#![allow(unsafe_code)]

pub mod nmi_ledger;
pub mod quiet;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use rampart_boot_info::MAX_CPUS;

/// Where a CPU stands. Transitions: Absent -> Starting -> Parked -> StartRequested -> Running,
/// or Starting -> Failed.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, num_enum::FromPrimitive)]
pub enum CpuState {
    /// No CPU in this slot (and any value not listed).
    #[num_enum(default)]
    Absent = 0,
    /// INIT-SIPI-SIPI sent, not yet in VMX root.
    Starting = 1,
    /// In VMX root, halted, waiting for a `StartVcpu` request.
    Parked = 2,
    /// A `StartVcpu` request is waiting for this CPU to take it.
    StartRequested = 3,
    /// Running its vCPU.
    Running = 4,
    /// Never reached VMX root: left out of the guest's CPU list.
    Failed = 5,
}

impl CpuState {
    /// True if the CPU is under the hypervisor: parked in VMX root or running (to run) a vCPU.
    pub fn in_vmx_root(self) -> bool {
        matches!(self, Self::Parked | Self::StartRequested | Self::Running)
    }
}

/// One CPU's slot. Index 0 is the boot CPU.
pub struct Cpu {
    pub apic_id: AtomicU32,
    state: AtomicU8,
    /// The requested vCPU entry: RIP, RSP, CR3 (valid in `StartRequested`).
    pub start_rip: AtomicU64,
    pub start_rsp: AtomicU64,
    pub start_cr3: AtomicU64,
    /// The last EPT generation this CPU has invalidated (`shootdown`).
    pub ept_generation: AtomicU64,
    /// VM exits on this CPU.
    pub exits: AtomicU64,
    /// NMIs the hypervisor sent this CPU and it has not yet taken: which NMI is whose.
    pub hypervisor_nmis: nmi_ledger::NmiLedger,
    /// A guest NMI (not the hypervisor's) arrived while this CPU ran hypervisor code: it is
    /// injected at the next VM entry that injects nothing else.
    pub guest_nmi_pending: AtomicBool,
    /// Top of this CPU's hypervisor stack (start-up, parking, then VM exits).
    pub stack_top: AtomicU64,
    /// Its VMXON region and VMCS, allocated by the boot CPU.
    pub vmxon_region: AtomicU64,
    pub vmcs_region: AtomicU64,
}

impl Cpu {
    const fn new() -> Self {
        Self {
            apic_id: AtomicU32::new(0),
            state: AtomicU8::new(CpuState::Absent as u8),
            start_rip: AtomicU64::new(0),
            start_rsp: AtomicU64::new(0),
            start_cr3: AtomicU64::new(0),
            ept_generation: AtomicU64::new(0),
            exits: AtomicU64::new(0),
            hypervisor_nmis: nmi_ledger::NmiLedger::new(),
            guest_nmi_pending: AtomicBool::new(false),
            stack_top: AtomicU64::new(0),
            vmxon_region: AtomicU64::new(0),
            vmcs_region: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> CpuState {
        CpuState::from(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, state: CpuState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves `from` -> `to` if the CPU is in `from`; false otherwise.
    pub fn transition(&self, from: CpuState, to: CpuState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

pub static CPUS: [Cpu; MAX_CPUS] = [const { Cpu::new() }; MAX_CPUS];

/// The slot of the CPU with `apic_id`, among slots that hold a CPU.
pub fn index_of(apic_id: u32) -> Option<usize> {
    CPUS.iter().position(|cpu| {
        cpu.state() != CpuState::Absent && cpu.apic_id.load(Ordering::Relaxed) == apic_id
    })
}

/// The APIC IDs of the CPUs in VMX root (parked or running), in slot order.
pub fn online() -> impl Iterator<Item = u32> {
    CPUS.iter()
        .filter(|cpu| cpu.state().in_vmx_root())
        .map(|cpu| cpu.apic_id.load(Ordering::Relaxed))
}

/// `slot=exits` for every CPU that ran a vCPU, for the log.
pub struct ExitsByVcpu;

impl core::fmt::Display for ExitsByVcpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let running = CPUS.iter().enumerate();
        let running = running.filter(|(_, cpu)| cpu.state() == CpuState::Running);
        for (n, (slot, cpu)) in running.enumerate() {
            let separator = if n == 0 { "" } else { " " };
            write!(f, "{separator}{slot}={}", cpu.exits.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

/// This CPU's slot index (0 on the boot CPU). IA32_GS_BASE holds it in VMX root: set at
/// start-up and loaded from the VMCS host-state area on every VM exit (SDM Vol. 3C 28.5.2), so
/// any hypervisor code can ask which CPU it runs on without a per-CPU pointer.
pub fn this_cpu() -> usize {
    #[cfg(not(test))]
    {
        // SAFETY: IA32_GS_BASE exists in 64-bit mode; reading it has no side effects.
        (unsafe { x86::msr::rdmsr(x86::msr::IA32_GS_BASE) } as usize).min(MAX_CPUS - 1)
    }
    #[cfg(test)]
    0
}

/// Records `index` as this CPU's slot (see [`this_cpu`]).
///
/// # Safety
/// Host code must not use GS-relative addressing (it does not) and `index` must be this CPU's.
pub unsafe fn set_this_cpu(index: usize) {
    // SAFETY: writing a small canonical value to IA32_GS_BASE is always valid.
    unsafe { x86::msr::wrmsr(x86::msr::IA32_GS_BASE, index as u64) };
}

/// NMI delivery (SDM Vol. 3A 11.6.1): delivery mode 100.
const ICR_NMI: u32 = 0b100 << 8;

/// Sends an NMI to the CPU in `slot`, which must run under the hypervisor (parked or running
/// a vCPU): there it makes a VM exit (NMI exiting) or enters the host NMI handler, both of
/// which only serve what `smp` left pending, and never pass it to the guest.
pub fn send_nmi(slot: usize) {
    let cpu = &CPUS[slot];
    cpu.hypervisor_nmis.note_sent();
    // SAFETY: x2APIC is on on every CPU the hypervisor runs (boot CPU before bring-up, APs in
    // `ap_entry`); the NMI's effect on the target is the one described above.
    unsafe { crate::arch::apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), ICR_NMI) };
}

/// True if an NMI this CPU takes now is the hypervisor's (and marks it taken).
pub fn take_hypervisor_nmi(slot: usize) -> bool {
    CPUS[slot].hypervisor_nmis.take()
}

/// Set once the hypervisor stops: every CPU that sees it halts.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Halts this CPU for good if the hypervisor is stopping.
pub fn halt_if_stopping() {
    if STOPPING.load(Ordering::SeqCst) {
        crate::arch::instructions::halt_forever();
    }
}

/// Stops every other CPU (a clean stop must stop the whole machine, not one vCPU): marks the
/// stop, then sends each CPU under the hypervisor an NMI, which ends in [`halt_if_stopping`].
pub fn halt_others() {
    if STOPPING.swap(true, Ordering::SeqCst) {
        return;
    }
    let me = this_cpu();
    for (slot, cpu) in CPUS.iter().enumerate() {
        if slot != me && cpu.state().in_vmx_root() {
            send_nmi(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_only_from_the_expected_state() {
        let cpu = Cpu::new();
        assert_eq!(cpu.state(), CpuState::Absent);
        cpu.set_state(CpuState::Parked);
        assert!(!cpu.transition(CpuState::Running, CpuState::Parked));
        assert!(cpu.transition(CpuState::Parked, CpuState::StartRequested));
        assert!(!cpu.transition(CpuState::Parked, CpuState::StartRequested));
        assert_eq!(cpu.state(), CpuState::StartRequested);
    }
}
