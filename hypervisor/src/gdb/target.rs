//! The stopped guest as a `gdbstub` target: registers, memory by guest-virtual address,
//! software and hardware breakpoints, resume and single-step requests. Nothing here touches
//! the VMCS or the CPU: `session` loads the frame before and applies the requests after.

use super::breakpoints::{HwBreakpoints, HwKind, HwSlot, SwBreakpoint, SwBreakpoints, INT3};
use super::memory;
use super::registers::GuestFrame;
use gdbstub::common::Signal;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
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

/// The debugger's view of the guest and what it asked for.
#[derive(Debug, Default)]
pub struct GuestTarget {
    pub frame: GuestFrame,
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
        BaseOps::SingleThread(self)
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

impl SingleThreadBase for GuestTarget {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs) -> TargetResult<(), Self> {
        *regs = self.frame.to_gdb();
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs) -> TargetResult<(), Self> {
        self.frame
            .from_gdb(regs)
            .map_err(|_| TargetError::NonFatal)?;
        self.frame_changed = true;
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        memory::read(&self.frame, start, data).map_err(|_| TargetError::Errno(EFAULT))
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        memory::write(&self.frame, start, data).map_err(|_| TargetError::Errno(EFAULT))
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for GuestTarget {
    /// Signals are not delivered to the guest (it has no signals); they are ignored.
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Some(ResumeMode::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GuestTarget {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Some(ResumeMode::Step);
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
