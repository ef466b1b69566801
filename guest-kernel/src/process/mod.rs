//! Processes: the table, scheduling (`schedule`), program loading (`spawn`) and the end of a
//! process (`exit`). The kernel is not preemptible: it runs with interrupts off except in the
//! idle loop, so a CPU never waits for the table lock on a holder it interrupted. Every CPU
//! runs the scheduler: each has its own current process (or its own idle context), and a
//! process runs on at most one CPU at a time (`Process::on_cpu`).

mod exit;
mod kthread;
mod schedule;
mod spawn;
pub mod text_cache;

pub use exit::{exit_current, kill, user_fault, wait};
#[cfg(feature = "attacks")]
pub use kthread::{fault_vector, spawn_kernel_thread};
pub use kthread::{in_kernel_thread, kernel_thread_fault};
pub use schedule::{
    allocate_stack_top, block_current, idle_loop, init, kicked_in_user_mode, schedule, timer_tick,
};
pub use spawn::{programs, set_initrd, spawn};

use crate::arch::percpu;
use crate::mm::cpu_roots::Used;
use crate::sched::queue::{Pid, ReadyQueue, SleepQueue};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;
use rampart_boot_info::MAX_CPUS;
use rampart_kernel_abi::syscall::{
    ProcessInfo, MAX_NAME, STATE_READY, STATE_SLEEPING, STATE_WAITING,
};
use spin::Mutex;

/// The idle tasks' pid (each CPU's start-up context; never in the ready queue).
pub const IDLE: Pid = 0;
/// `wait` for any child.
pub const ANY_CHILD: u64 = u64::MAX;

/// What a blocked process waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    Child(u64),
    Console,
}

pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub name: [u8; MAX_NAME],
    /// `STATE_*` of the ABI.
    pub state: u32,
    pub blocked: Option<Blocked>,
    /// The process's private root (physical; no CPU loads it: a CPU running the process
    /// copies its directory entries, `mm::cpu_roots`); the kernel root for a kernel thread; 0
    /// once its address space is freed.
    pub root: u64,
    /// The directory entries its address space uses (set at spawn, then by `fault_in`).
    pub used: Used,
    /// Kernel stack slot (`mm::layout::kernel_stack_bottom`) and its top.
    pub stack_slot: Option<u64>,
    pub kernel_top: u64,
    /// The kernel RSP while switched out.
    pub saved_rsp: u64,
    pub brk_start: u64,
    pub brk: u64,
    pub exit_code: i64,
    pub ticks: u64,
    /// The CPU (index) it runs on, or last ran on.
    pub cpu: u32,
    /// Some CPU is on its kernel stack: set when a CPU picks it, cleared by `arch::switch` once
    /// that CPU has saved its RSP and left the stack. No other CPU may resume it meanwhile.
    pub on_cpu: AtomicBool,
    /// `kill` found it running on another CPU: it ends itself at its next timer tick in ring 3
    /// or when it would block.
    pub kill_pending: bool,
}

impl Process {
    pub fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            parent: self.parent,
            state: self.state,
            cpu: self.cpu,
            ticks: self.ticks,
            name: self.name,
        }
    }
}

/// What `spawn` and `spawn_kernel_thread` choose for a new process; [`Table::add_ready`] fills in
/// the rest.
pub struct NewProcess<'a> {
    pub parent: Pid,
    /// Truncated to `MAX_NAME` bytes.
    pub name: &'a str,
    pub root: u64,
    /// The directory entries `root` uses.
    pub used: Used,
    /// Kernel stack slot and top, from `schedule::allocate_kernel_stack`.
    pub kernel_stack: (u64, u64),
    pub saved_rsp: u64,
    /// Start (and initial end) of the heap.
    pub brk: u64,
}

/// What the table knows about one CPU.
pub struct CpuSlot {
    /// The process it runs (IDLE: its idle context).
    pub current: Pid,
    /// The idle context's kernel RSP while switched out.
    pub idle_rsp: u64,
}

pub struct Table {
    pub processes: BTreeMap<Pid, Box<Process>>,
    pub cpus: [CpuSlot; MAX_CPUS],
    pub ready: ReadyQueue,
    pub sleep: SleepQueue,
    pub next_pid: Pid,
    pub free_stack_slots: Vec<u64>,
    pub next_stack_slot: u64,
    /// Processes reaped (out of `processes`) whose kernel stack a CPU may still be on: freed
    /// once `on_cpu` is clear. Boxed: a switching CPU holds pointers into them.
    #[allow(clippy::vec_box)]
    pub dead: Vec<Box<Process>>,
}

pub static TABLE: Mutex<Table> = Mutex::new(Table {
    processes: BTreeMap::new(),
    cpus: [const {
        CpuSlot {
            current: IDLE,
            idle_rsp: 0,
        }
    }; MAX_CPUS],
    ready: ReadyQueue::new(),
    sleep: SleepQueue::new(),
    next_pid: 1,
    free_stack_slots: Vec::new(),
    next_stack_slot: 0,
    dead: Vec::new(),
});

impl Table {
    /// The pid this CPU runs.
    pub fn current_pid(&self) -> Pid {
        self.cpus[percpu::index()].current
    }

    /// The process this CPU runs (the shared IDLE record for an idle context).
    pub fn current(&mut self) -> &mut Process {
        let pid = self.current_pid();
        self.find(pid).expect("current process is in the table")
    }

    /// A process in the table or reaped but not yet freed.
    pub fn find(&mut self, pid: Pid) -> Option<&mut Process> {
        if self.processes.contains_key(&pid) {
            return self.processes.get_mut(&pid).map(|p| &mut **p);
        }
        self.dead
            .iter_mut()
            .find(|p| p.pid == pid)
            .map(|p| &mut **p)
    }

    /// Adds `new` under the next pid, ready to run; returns the pid.
    pub fn add_ready(&mut self, new: NewProcess) -> Pid {
        let pid = self.next_pid;
        self.next_pid += 1;
        let mut name = [0; MAX_NAME];
        let length = new.name.len().min(MAX_NAME);
        name[..length].copy_from_slice(&new.name.as_bytes()[..length]);
        let (stack_slot, kernel_top) = new.kernel_stack;
        self.processes.insert(
            pid,
            Box::new(Process {
                pid,
                parent: new.parent,
                name,
                state: STATE_READY,
                blocked: None,
                root: new.root,
                used: new.used,
                stack_slot: Some(stack_slot),
                kernel_top,
                saved_rsp: new.saved_rsp,
                brk_start: new.brk,
                brk: new.brk,
                exit_code: 0,
                ticks: 0,
                cpu: 0,
                on_cpu: AtomicBool::new(false),
                kill_pending: false,
            }),
        );
        self.ready.push(pid);
        let _ = crate::smp::kick_idle();
        pid
    }

    /// The current process's pid and name.
    pub fn current_and_name(&mut self) -> (Pid, [u8; MAX_NAME]) {
        (self.current_pid(), self.current().name)
    }

    /// Makes `pid` runnable if it sleeps or waits.
    pub fn wake(&mut self, pid: Pid) {
        let process = self.processes.get_mut(&pid);
        if let Some(process) = process.filter(|p| matches!(p.state, STATE_SLEEPING | STATE_WAITING))
        {
            process.state = STATE_READY;
            process.blocked = None;
            self.ready.push(pid);
            let _ = crate::smp::kick_idle();
        }
    }
}

/// A process name as text, for messages ("?" if it is not UTF-8).
pub fn name_text(name: &[u8; MAX_NAME]) -> &str {
    core::str::from_utf8(name)
        .unwrap_or("?")
        .trim_end_matches('\0')
}

/// The current process's pid. Inlined: it is the whole of `getpid`, the benchmark's system call.
#[inline]
pub fn current_pid() -> Pid {
    TABLE.lock().current_pid()
}

/// The current process's address space root.
pub fn current_root() -> u64 {
    TABLE.lock().current().root
}

/// Fills `out` with process records (the idle task excluded); returns how many.
pub fn list(out: &mut [ProcessInfo]) -> usize {
    let table = TABLE.lock();
    let rows = table.processes.values().filter(|p| p.pid != IDLE);
    out.iter_mut()
        .zip(rows)
        .map(|(slot, p)| *slot = p.info())
        .count()
}
