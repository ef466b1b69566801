//! Single-stepping the guest for `stepi`: by the guest's RFLAGS.TF and #DB exception exiting.
//!
//! Why not the monitor trap flag (primary control bit 27, SDM Vol. 3C 26.5.2, exit reason 37)?
//! Bochs 2.7 does not deliver it: with the control set before VMRESUME (primary controls read
//! back as 0x9e006172 on `tigerlake`, allowed-1 has bit 27) no exit 37 ever came and the guest
//! ran on to its shell. Bochs 2.7 signals the MTF event masked at VM entry and unmasks it only
//! when it delivers an injected event; the unmask at the next instruction boundary came after
//! 2.7 (PLATFORM.md: MTF edge cases fixed upstream). RFLAGS.TF works on Bochs 2.7 and on
//! hardware alike, so it is the one method; the MTF path stays for emulators that deliver it.
//!
//! TF stepping: the stub sets TF, the instruction runs and raises a single-step trap, which
//! exits (exception bitmap bit 1) with BS (bit 14) in the exit qualification; the guest's DR6
//! is not written (28.1). The guest's own TF is then restored, so it never sees the stub's.
//! Interrupts arriving during the step are delivered by the guest as usual: the CPU clears TF
//! in the handler and IRET restores it, so the step ends after the stepped instruction, not
//! inside the handler. Blocking by STI cannot be used here: with TF = 1 the entry checks
//! require BS in the pending debug exceptions (27.3.1.5), which would trap at once.
//! An exception the stepped instruction raises is delivered with TF clear, so its handler runs
//! free: a step must still end. HLT exits while a step is armed (primary control bit 7, where
//! the capability MSR allows it): a HLT reached during the step ends it there, as the stub's
//! stop, instead of halting a CPU that may have interrupts off for good ("HLT with IF=0", the
//! step-hang reproduction); and the Ctrl-C poll stays armed during steps (`control::apply`).
//! Known limit: a stepped PUSHF stores the stub's TF in the guest's copy of RFLAGS.
#![forbid(unsafe_code)]

use super::control::set_control;
use crate::state;
use crate::vmx::vmcs::Vmcs;
use core::sync::atomic::{AtomicU8, Ordering};
use x86::vmx::vmcs::control::{self, PrimaryControls};
use x86::vmx::vmcs::guest;

/// RFLAGS.TF (SDM Vol. 1 3.4.3.3).
const RFLAGS_TF: u64 = 1 << 8;
/// #DB exit qualification bit 14: single-step trap (SDM Vol. 3C 28.2.1 Table 28-1).
pub const QUALIFICATION_BS: u64 = 1 << 14;
/// Pending debug exceptions bit 14: BS, a single-step trap pending (25.4.2 Table 25-4).
const PENDING_BS: u64 = 1 << 14;

/// How single steps are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepMethod {
    /// Not chosen by [`method`] (see the module comment); kept with its arming code.
    #[allow(dead_code)]
    MonitorTrapFlag,
    TrapFlag,
}

/// The method in use (see the module comment for why it is TF).
pub fn method() -> StepMethod {
    StepMethod::TrapFlag
}

/// True if the capability MSR allows primary control `control` (allowed-1 half, SDM Vol. 3D
/// A.3.2).
fn allows(control: PrimaryControls) -> bool {
    super::control::allowed(state::get().caps.procbased, control.bits())
}

fn has_monitor_trap_flag() -> bool {
    allows(PrimaryControls::MONITOR_TRAP_FLAG)
}

/// No step in progress.
const IDLE: u8 = 0;
/// Stepping by TF; the guest's own TF was clear / set.
const TF_GUEST_CLEAR: u8 = 1;
const TF_GUEST_SET: u8 = 2;
/// Stepping by the monitor trap flag.
const MTF: u8 = 3;

static STEPPING: AtomicU8 = AtomicU8::new(IDLE);

/// HLT exiting on or off (only while a step is armed).
fn hlt_exiting(vmcs: &Vmcs, on: bool) {
    if allows(PrimaryControls::HLT_EXITING) {
        set_control(
            vmcs,
            control::PRIMARY_PROCBASED_EXEC_CONTROLS,
            PrimaryControls::HLT_EXITING.bits(),
            on,
        );
    }
}

/// Arms one step before the guest runs again.
pub fn begin(vmcs: &Vmcs) {
    hlt_exiting(vmcs, true);
    match method() {
        StepMethod::MonitorTrapFlag if has_monitor_trap_flag() => {
            set_control(
                vmcs,
                control::PRIMARY_PROCBASED_EXEC_CONTROLS,
                PrimaryControls::MONITOR_TRAP_FLAG.bits(),
                true,
            );
            block_interrupts_for_one_instruction(vmcs);
            STEPPING.store(MTF, Ordering::Relaxed);
        }
        StepMethod::MonitorTrapFlag => log::error!("gdb: no monitor trap flag; cannot step"),
        StepMethod::TrapFlag => {
            let rflags = vmcs.read(guest::RFLAGS).unwrap_or(0);
            let own = if rflags & RFLAGS_TF != 0 {
                TF_GUEST_SET
            } else {
                TF_GUEST_CLEAR
            };
            if let Err(e) = vmcs.write(guest::RFLAGS, rflags | RFLAGS_TF) {
                log::error!("gdb: {e}");
                return;
            }
            STEPPING.store(own, Ordering::Relaxed);
        }
    }
}

/// True while a step is armed.
pub fn in_progress() -> bool {
    STEPPING.load(Ordering::Relaxed) != IDLE
}

/// Ends a step (it completed, or another stop came first): the monitor trap flag off, or the
/// guest's own TF back.
pub fn end(vmcs: &Vmcs) {
    hlt_exiting(vmcs, false);
    match STEPPING.swap(IDLE, Ordering::Relaxed) {
        MTF => set_control(
            vmcs,
            control::PRIMARY_PROCBASED_EXEC_CONTROLS,
            PrimaryControls::MONITOR_TRAP_FLAG.bits(),
            false,
        ),
        TF_GUEST_CLEAR => {
            let rflags = vmcs.read(guest::RFLAGS).unwrap_or(0);
            if let Err(e) = vmcs.write(guest::RFLAGS, rflags & !RFLAGS_TF) {
                log::error!("gdb: {e}");
            }
            // An instruction exit with the stub's TF set (HLT) leaves the single-step trap
            // pending (BS in the pending debug exceptions, SDM Vol. 3C 28.3.4): the next entry
            // would deliver it to the guest, which never asked for it.
            let pending = vmcs.read(guest::PENDING_DBG_EXCEPTIONS).unwrap_or(0);
            if pending & PENDING_BS != 0 {
                let _ = vmcs.write(guest::PENDING_DBG_EXCEPTIONS, pending & !PENDING_BS);
            }
        }
        _ => {}
    }
}

/// Readable name of the method for the start-up log line.
pub fn describe() -> &'static str {
    match method() {
        StepMethod::TrapFlag => "by RFLAGS.TF and #DB exits",
        StepMethod::MonitorTrapFlag if has_monitor_trap_flag() => "by monitor trap flag",
        StepMethod::MonitorTrapFlag => "unavailable",
    }
}

/// RFLAGS.IF (SDM Vol. 1 3.4.3.3).
const RFLAGS_IF: u64 = 1 << 9;
/// Interruptibility state: blocking by STI (bit 0) and by MOV SS (bit 1) (SDM Vol. 3C 25.4.2
/// Table 25-3); activity state 0 = active (25.4.2).
const BLOCKING_BY_STI: u64 = 1 << 0;
const BLOCKING_BY_MOV_SS: u64 = 1 << 1;
const ACTIVITY_ACTIVE: u64 = 0;

/// For an MTF step, so that it executes the instruction at RIP rather than entering an
/// interrupt handler: with RFLAGS.IF = 1 and the guest active, mark blocking by STI, which
/// holds off external interrupts for exactly one instruction (Table 25-3). The entry checks
/// forbid it with IF = 0 or together with blocking by MOV SS (27.3.1.5), where nothing is
/// needed or interrupts are already held off.
fn block_interrupts_for_one_instruction(vmcs: &Vmcs) {
    let rflags = vmcs.read(guest::RFLAGS).unwrap_or(0);
    let state = vmcs.read(guest::INTERRUPTIBILITY_STATE).unwrap_or(0);
    let active = vmcs.read(guest::ACTIVITY_STATE).unwrap_or(1) == ACTIVITY_ACTIVE;
    if rflags & RFLAGS_IF != 0 && state & BLOCKING_BY_MOV_SS == 0 && active {
        let _ = vmcs.write(guest::INTERRUPTIBILITY_STATE, state | BLOCKING_BY_STI);
    }
}
