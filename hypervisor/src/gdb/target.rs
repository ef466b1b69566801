//! The stopped guest as a `gdbstub` target: registers, memory by guest-virtual address,
//! software and hardware breakpoints, resume and single-step requests. Nothing here touches
//! the VMCS or the CPU: `session` loads the frame before and applies the requests after.
#![forbid(unsafe_code)]

use super::breakpoints::{HwBreakpoints, HwKind, HwSlot, SwBreakpoint, SwBreakpoints, INT3};
use super::memory;
use super::registers::GuestFrame;
use gdbstub::common::Signal;
use gdbstub::common::Tid;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint as SwBreakpointExt, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::monitor_cmd::MonitorCmdOps;
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;

/// EFAULT, GDB's usual error number for an unreadable address.
const EFAULT: u8 = 14;

/// How GDB wants the guest to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeMode {
    Continue,
    Step,
}

/// The debugger's view of the guest and what it asked for. Each vCPU is a thread (thread id =
/// slot + 1); `frame` is the stopped vCPU's, the others' are parked in `vcpus`.
#[derive(Debug, Default)]
pub struct GuestTarget {
    pub frame: GuestFrame,
    /// The slot of the vCPU that stopped and serves the debugger.
    pub stopper: usize,
    /// GDB wrote registers: store the frame back before the guest runs.
    pub frame_changed: bool,
    pub sw: SwBreakpoints,
    pub hw: HwBreakpoints,
    /// DR0-DR3/DR7 need reloading before the guest runs.
    pub hw_changed: bool,
    /// Set by a `c` or `s` packet; taken by the session.
    pub resume: Option<ResumeMode>,
}

impl Target for GuestTarget {
    type Arch = X86_64_SSE;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    /// Acknowledged mode survives a stub restart after a malformed command (see `session`).
    fn use_no_ack_mode(&self) -> bool {
        false
    }
}

/// The thread id of a vCPU slot.
pub fn tid_of(slot: usize) -> Tid {
    Tid::new(slot + 1).unwrap_or(Tid::MIN)
}

fn slot_of(tid: Tid) -> usize {
    tid.get() - 1
}

impl GuestTarget {
    /// The frame of thread `tid`: the stopped vCPU's own, or a parked one's.
    fn frame_of(&self, tid: Tid) -> Option<GuestFrame> {
        let slot = slot_of(tid);
        if slot == self.stopper {
            Some(self.frame)
        } else {
            super::vcpus::frame_of(slot)
        }
    }
}

impl MultiThreadBase for GuestTarget {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        *regs = self.frame_of(tid).ok_or(TargetError::NonFatal)?.to_gdb();
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let mut frame = self.frame_of(tid).ok_or(TargetError::NonFatal)?;
        frame.load_gdb(regs).map_err(|_| TargetError::NonFatal)?;
        if slot_of(tid) == self.stopper {
            self.frame = frame;
            self.frame_changed = true;
        } else if !super::vcpus::set_frame_of(slot_of(tid), frame) {
            return Err(TargetError::NonFatal);
        }
        Ok(())
    }

    /// Memory through the thread's own page tables (its CR3).
    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let frame = self.frame_of(tid).unwrap_or(self.frame);
        memory::read(&frame, start, data).map_err(|_| TargetError::Errno(EFAULT))
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let frame = self.frame_of(tid).unwrap_or(self.frame);
        memory::write(&frame, start, data).map_err(|_| TargetError::Errno(EFAULT))
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        thread_is_active(tid_of(self.stopper));
        super::vcpus::parked()
            .filter(|&slot| slot != self.stopper)
            .for_each(|slot| thread_is_active(tid_of(slot)));
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

/// Every vCPU resumes together (all-stop); only the stopped vCPU can single-step: a step
/// asked for another thread resumes everything instead.
impl MultiThreadResume for GuestTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        if self.resume.is_none() {
            self.resume = Some(ResumeMode::Continue);
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.resume = None;
        Ok(())
    }

    /// Signals are not delivered to the guest (it has no signals); they are ignored.
    fn set_resume_action_continue(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

/// GDB asks for scheduler locking when it resumes one thread alone (`vCont;s:1`). Rampart's
/// vCPUs resume together, so the others also run during a step, as with GDB's default
/// `scheduler-locking off`.
impl MultiThreadSchedulerLocking for GuestTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl MultiThreadSingleStep for GuestTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        if slot_of(tid) == self.stopper {
            self.resume = Some(ResumeMode::Step);
        }
        Ok(())
    }
}

impl Breakpoints for GuestTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpointExt for GuestTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.sw.contains(addr) {
            return Ok(true);
        }
        let mut original = [0u8];
        memory::read(&self.frame, addr, &mut original).map_err(|_| TargetError::Errno(EFAULT))?;
        if !self.sw.insert(SwBreakpoint {
            address: addr,
            original: original[0],
        }) {
            return Ok(false);
        }
        memory::write(&self.frame, addr, &[INT3]).map_err(|_| TargetError::Errno(EFAULT))?;
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let Some(breakpoint) = self.sw.remove(addr) else {
            return Ok(false);
        };
        memory::write(&self.frame, addr, &[breakpoint.original])
            .map_err(|_| TargetError::Errno(EFAULT))?;
        Ok(true)
    }
}

impl HwBreakpoint for GuestTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_slot(addr, HwKind::Execute, 1))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_slot(addr, HwKind::Execute))
    }
}

fn hw_kind(kind: WatchKind) -> HwKind {
    match kind {
        WatchKind::Write => HwKind::Write,
        WatchKind::Read | WatchKind::ReadWrite => HwKind::ReadWrite,
    }
}

impl HwWatchpoint for GuestTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.add_slot(addr, hw_kind(kind), len))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        _len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.remove_slot(addr, hw_kind(kind)))
    }
}

impl GuestTarget {
    fn add_slot(&mut self, address: u64, kind: HwKind, len: u64) -> bool {
        let added = self.hw.add(HwSlot { address, kind, len }).is_some();
        self.hw_changed |= added;
        added
    }

    fn remove_slot(&mut self, address: u64, kind: HwKind) -> bool {
        let removed = self.hw.remove(address, kind);
        self.hw_changed |= removed;
        removed
    }

    /// Restores every byte under a software breakpoint and frees the hardware slots (detach).
    pub fn clear_breakpoints(&mut self) {
        while let Some(b) = self.sw.pop() {
            let _ = memory::write(&self.frame, b.address, &[b.original]);
        }
        self.hw = HwBreakpoints::default();
        self.hw_changed = true;
    }
}
