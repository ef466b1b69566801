//! The debugging session: one `gdbstub` state machine on COM2, kept in a static across VM
//! exits (as COCONUT-SVSM does), driven byte by byte while the guest is stopped.
//!
//! Flow: [`super::wait_for_debugger`] builds it before VMLAUNCH and serves GDB until it resumes
//! the guest; debug exits call [`stop`] (report, serve, apply); preemption-timer exits call
//! [`poll`] (Ctrl-C). Serving ends when GDB resumes the guest (its request is applied to the
//! VMCS and the debug registers by `control`), detaches, or kills the guest.
#![allow(unsafe_code)]

use super::com2::Com2;
use super::control;
use super::framing::{Frame, Framer, MAX_PACKET};
use super::registers::GuestFrame;
use super::target::{GuestTarget, ResumeMode};
use crate::vcpu::GuestRegisters;
use crate::vmx::vmcs::Vmcs;
use gdbstub::common::Signal;
use gdbstub::common::Tid;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{
    BaseStopReason, DisconnectReason, GdbStubBuilder, MultiThreadStopReason, SingleThreadStopReason,
};

type Machine = GdbStubStateMachine<'static, GuestTarget, Com2>;
/// Why a vCPU stopped; [`threaded`] names the vCPU for GDB.
pub type StopReason = SingleThreadStopReason<u64>;

/// The stop reason as GDB gets it: attributed to the thread of the vCPU that stopped, so that
/// GDB switches to it.
fn threaded(reason: StopReason, tid: Tid) -> MultiThreadStopReason<u64> {
    match reason {
        BaseStopReason::Signal(signal) => BaseStopReason::SignalWithThread { tid, signal },
        BaseStopReason::SwBreak(()) => BaseStopReason::SwBreak(tid),
        BaseStopReason::HwBreak(()) => BaseStopReason::HwBreak(tid),
        BaseStopReason::Watch { kind, addr, .. } => BaseStopReason::Watch { tid, kind, addr },
        other => other.into(),
    }
}

/// The error reply sent after `gdbstub` gave up on a packet (an ack, then `E01`).
const ERROR_REPLY: &[u8] = b"+$E01#a6";
/// The reply to `vKill` (`OK`).
const KILL_REPLY: &[u8] = b"$OK#9a";
/// The result line's first word after the debugger killed the guest (`RAMPART-RESULT: FAIL ...`).
pub const KILLED_WORD: &str = "killed-by-debugger";

struct Session {
    target: GuestTarget,
    machine: Option<Machine>,
    framer: Framer,
    /// A debugger is attached: debug exits stop into it and the preemption timer polls.
    attached: bool,
}

static SESSION: spin::Mutex<Option<Session>> = spin::Mutex::new(None);
static mut PACKET_BUFFER: [u8; MAX_PACKET] = [0; MAX_PACKET];

/// A new state machine on COM2 over the static packet buffer.
fn build(target: &mut GuestTarget) -> Option<Machine> {
    // SAFETY: called under the SESSION lock, only when no state machine exists (at the start,
    // or after `gdbstub` returned an error and so dropped the previous one): nothing else
    // refers to the buffer.
    let buffer = unsafe { &mut *core::ptr::addr_of_mut!(PACKET_BUFFER) };
    // SAFETY: `super::wait_for_debugger` programmed COM2 before the first build; COM2 is the
    // hypervisor's, and the single Com2 lives inside the single state machine.
    let conn = unsafe { Com2::attach() };
    let stub = GdbStubBuilder::new(conn)
        .with_packet_buffer(buffer)
        .build()
        .ok()?;
    stub.run_state_machine(target).ok()
}

/// Starts the session; the guest has not run yet.
pub fn start(vmcs: &Vmcs, regs: &mut GuestRegisters) {
    let mut guard = SESSION.lock();
    let session = guard.insert(Session {
        target: GuestTarget::default(),
        machine: None,
        framer: Framer::new(),
        attached: true,
    });
    session.machine = build(&mut session.target);
    load_frame(session, vmcs, regs);
    serve(session, vmcs, regs);
}

/// True while a debugger is attached.
pub fn attached() -> bool {
    SESSION
        .try_lock()
        .is_some_and(|s| s.as_ref().is_some_and(|s| s.attached))
}

/// True if the INT3 at `address` is one of the debugger's.
pub fn owns_sw_breakpoint(address: u64) -> bool {
    SESSION.try_lock().is_some_and(|s| {
        s.as_ref()
            .is_some_and(|s| s.attached && s.target.sw.contains(address))
    })
}

/// The hardware slot a #DB exit with these B0-B3 bits hit, as a stop reason.
pub fn hw_stop_reason(dr6_bits: u64) -> Option<StopReason> {
    let guard = SESSION.try_lock()?;
    let session = guard.as_ref().filter(|s| s.attached)?;
    let slot = session.target.hw.hit(dr6_bits)?;
    Some(control::stop_reason_of(slot))
}

/// Reports a stop to the attached debugger and serves it until it resumes the guest. False
/// (and nothing done) if no debugger is attached.
pub fn stop(vmcs: &Vmcs, regs: &mut GuestRegisters, reason: StopReason) -> bool {
    let Some(mut guard) = SESSION.try_lock() else {
        return false;
    };
    let Some(session) = guard.as_mut().filter(|s| s.attached) else {
        return false;
    };
    super::step::end(vmcs);
    let slot = crate::cpus::this_cpu();
    session.target.stopper = slot;
    halt_others(slot);
    if !load_frame(session, vmcs, regs) {
        super::vcpus::resume_others();
        return false;
    }
    let tid = super::target::tid_of(slot);
    session.machine = match session.machine.take() {
        Some(GdbStubStateMachine::Running(gdb)) => report(
            gdb.report_stop(&mut session.target, threaded(reason, tid)),
            &mut session.target,
        ),
        other => other,
    };
    serve(session, vmcs, regs);
    super::vcpus::resume_others();
    true
}

/// Stops the other vCPUs; says so if some did not stop in time.
fn halt_others(slot: usize) {
    let missing = super::vcpus::halt_others(slot);
    if missing > 0 {
        log::error!("gdb: {missing} vCPU(s) did not stop in time; GDB does not list them");
    }
}

/// Preemption-timer exit while the guest runs: takes waiting bytes (Ctrl-C) from COM2.
pub fn poll(vmcs: &Vmcs, regs: &mut GuestRegisters) {
    let Some(mut guard) = SESSION.try_lock() else {
        return;
    };
    let Some(session) = guard.as_mut().filter(|s| s.attached) else {
        control::stop_polling(vmcs);
        super::step::end(vmcs);
        return;
    };
    let mut conn = unsafe_conn();
    let mut interrupted = false;
    session.target.stopper = crate::cpus::this_cpu();
    while let Some(byte) = conn.try_read() {
        interrupted |= pump(session, byte);
    }
    if interrupted {
        super::step::end(vmcs);
        halt_others(session.target.stopper);
        if load_frame(session, vmcs, regs) {
            serve(session, vmcs, regs);
        }
        super::vcpus::resume_others();
    }
}

fn unsafe_conn() -> Com2 {
    // SAFETY: only used to read bytes under the SESSION lock while the machine, which owns the
    // other Com2, is not running; both refer to the hypervisor's COM2.
    unsafe { Com2::attach() }
}

fn load_frame(session: &mut Session, vmcs: &Vmcs, regs: &GuestRegisters) -> bool {
    match GuestFrame::load(vmcs, regs) {
        Ok(frame) => {
            session.target.frame = frame;
            true
        }
        Err(e) => {
            log::error!("gdb: cannot read guest state: {e}");
            false
        }
    }
}

/// Feeds one byte through the framer into the machine; true if the machine wants the guest
/// stopped (Ctrl-C handled, or anything but Running).
fn pump(session: &mut Session, byte: u8) -> bool {
    let Session {
        target,
        machine,
        framer,
        ..
    } = session;
    match framer.push(byte) {
        Frame::Pending => {}
        Frame::Reject => {
            let _ = unsafe_conn().write(b'-');
        }
        Frame::Forward(bytes) => {
            for &b in bytes {
                *machine = match machine.take() {
                    Some(GdbStubStateMachine::Idle(gdb)) => {
                        report(gdb.incoming_data(target, b), target)
                    }
                    Some(GdbStubStateMachine::Running(gdb)) => {
                        report(gdb.incoming_data(target, b), target)
                    }
                    other => other,
                };
                *machine = match machine.take() {
                    Some(GdbStubStateMachine::CtrlCInterrupt(gdb)) => {
                        let tid = super::target::tid_of(target.stopper);
                        let reason = Some(threaded(StopReason::Signal(Signal::SIGINT), tid));
                        report(gdb.interrupt_handled(target, reason), target)
                    }
                    other => other,
                };
            }
        }
    }
    !matches!(machine, Some(GdbStubStateMachine::Running(_)))
}

/// Keeps the machine after a call; after an error (gdbstub drops its machine on a malformed
/// command) replies `E01` and starts a fresh one.
fn report<E: core::fmt::Debug>(
    result: Result<Machine, E>,
    target: &mut GuestTarget,
) -> Option<Machine> {
    match result {
        Ok(machine) => Some(machine),
        Err(e) => {
            log::info!("gdb: bad packet ({e:?}); replied with an error");
            let _ = unsafe_conn().write_all(ERROR_REPLY);
            build(target)
        }
    }
}

/// `kill` from GDB: answers a `vKill` (a `k` wants no reply; GDB drops the extra `OK` as it
/// closes), then stops the machine the way every other stop does: the stop line, the exit
/// counters, a result line for the runner, and the CPU halted.
fn killed(conn: &mut Com2) -> ! {
    let _ = conn.write_all(KILL_REPLY);
    log::info!("gdb: killed by the debugger; halting");
    log::info!("exits: {}", crate::state::STATS);
    crate::console::result_line(format_args!("FAIL {KILLED_WORD}"));
    crate::arch::instructions::halt_forever()
}

/// Serves GDB while the guest is stopped, until GDB resumes, detaches or kills it.
fn serve(session: &mut Session, vmcs: &Vmcs, regs: &mut GuestRegisters) {
    session.target.resume = None;
    let mut conn = unsafe_conn();
    loop {
        match session.machine.take() {
            Some(GdbStubStateMachine::Running(gdb)) => {
                session.machine = Some(gdb.into());
                break;
            }
            Some(GdbStubStateMachine::Disconnected(gdb)) => {
                let reason = gdb.get_reason();
                session.machine = Some(gdb.return_to_idle());
                if reason == DisconnectReason::Kill {
                    killed(&mut conn);
                }
                log::info!("gdb: debugger detached ({reason:?}); guest continues");
                session.target.clear_breakpoints();
                session.attached = false;
                session.target.resume = Some(ResumeMode::Continue);
                break;
            }
            Some(other) => {
                session.machine = Some(other);
                pump(session, conn.read_blocking());
            }
            None => {
                log::error!("gdb: stub lost; guest continues without debugger");
                session.attached = false;
                break;
            }
        }
    }
    let attached = session.attached;
    control::apply(vmcs, regs, &mut session.target, attached);
}
