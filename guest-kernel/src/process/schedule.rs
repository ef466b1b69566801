//! Round-robin scheduling on every CPU: the timer tick (sleepers and console input on the boot
//! CPU, preemption of ring 3 everywhere), the switch itself, blocking, and the idle loop (HLT).
//!
//! One ready queue for all CPUs. A process leaves a CPU in two steps: under the table lock it
//! is requeued or parked and the next one picked; then, without the lock, the CPU saves its RSP
//! and leaves its stack, clearing `on_cpu`. A CPU that picks a process whose `on_cpu` is still
//! set waits for that (it holds the lock, which the switching CPU no longer needs); parking
//! and picking happen in one critical section, so a process in the ready queue with `on_cpu`
//! set is always in that short lock-free tail.

use super::{Blocked, Process, Table, IDLE, TABLE};
use crate::arch::phys::{self, Frames};
use crate::arch::{cpu, cpu_roots, paging, percpu, switch, syscall_entry};
use crate::console;
use crate::mm::address_space::{self, PhysMemory};
use crate::mm::cpu_roots::Used;
use crate::mm::kernel_map::leaf_accessed;
use crate::mm::layout::kernel_stack_bottom;
use crate::mm::layout::{KERNEL_STACK_SIZE, MAX_KERNEL_STACKS};
use crate::mm::page_table::{Access, PAGE_SIZE};
use crate::time;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};
use rampart_boot_info::MAX_CPUS;
use rampart_kernel_abi::syscall::{EXIT_KILLED, STATE_READY, STATE_RUNNING};
use spin::MutexGuard;

/// Each CPU's stand-in for `on_cpu` when it leaves its idle context (never resumed elsewhere).
static IDLE_LEAVING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Registers the idle task (pid 0), the record every CPU's idle context shares, and tells the
/// frame allocator which user text frames to keep (`text_cache`).
pub fn init() {
    crate::arch::phys::set_shared_text(super::text_cache::holds);
    let mut table = TABLE.lock();
    let mut name = [0; rampart_kernel_abi::syscall::MAX_NAME];
    name[..4].copy_from_slice(b"idle");
    table.processes.insert(
        IDLE,
        Box::new(Process {
            pid: IDLE,
            parent: IDLE,
            name,
            state: STATE_RUNNING,
            blocked: None,
            root: paging::kernel_root(),
            used: Used::EMPTY,
            stack_slot: None,
            kernel_top: 0,
            saved_rsp: 0,
            brk_start: 0,
            brk: 0,
            exit_code: 0,
            ticks: 0,
            cpu: 0,
            on_cpu: AtomicBool::new(false),
            kill_pending: false,
        }),
    );
}

/// A CPU's idle task: runs whatever is ready, else halts until the next interrupt.
pub fn idle_loop() -> ! {
    loop {
        cpu::disable_interrupts();
        schedule();
        let cpu = percpu::index();
        if crate::smp::park_requested(cpu) {
            crate::smp::parked(cpu);
        }
        cpu::enable_and_halt();
    }
}

/// Called by the timer interrupt of CPU `cpu` after EOI: on the boot CPU, wakes due sleepers
/// and console readers; everywhere, charges the tick and, if something waits to run, preempts
/// a process interrupted in ring 3, unless an idle CPU can take the waiting one instead (it is
/// kicked); ends the process if another CPU killed it meanwhile.
#[inline(never)] // a real function: `hbreak timer_tick` (the gdb boot test) stops on every tick
pub fn timer_tick(from_user: bool, cpu: usize) {
    let line_ready = cpu == 0 && console::poll_input();
    let (killed, preempt) = {
        let mut table = TABLE.lock();
        if table.processes.is_empty() {
            return;
        }
        if cpu == 0 {
            let now = time::ticks();
            let due: alloc::vec::Vec<_> = table.sleep.wake_due(now).collect();
            due.into_iter().for_each(|pid| table.wake(pid));
        }
        if line_ready {
            let readers: alloc::vec::Vec<_> = table
                .processes
                .values()
                .filter(|p| p.blocked == Some(Blocked::Console))
                .map(|p| p.pid)
                .collect();
            readers.into_iter().for_each(|pid| table.wake(pid));
        }
        let current = table.current();
        current.ticks += 1;
        let killed = current.kill_pending;
        let preempt = from_user
            && (crate::smp::park_requested(cpu)
                || (!table.ready.is_empty() && !crate::smp::kick_idle()));
        (killed, preempt)
    };
    if from_user && killed {
        super::exit_current(EXIT_KILLED);
    }
    if preempt {
        schedule();
    }
}

/// From a kick (`smp::kick`, `smp::request_park`) that interrupted ring 3: ends the current
/// process if `kill` asked for it, or leaves it for the idle context if this CPU is to park.
pub fn kicked_in_user_mode() {
    if TABLE.lock().current().kill_pending {
        super::exit_current(EXIT_KILLED);
    }
    if crate::smp::park_requested(percpu::index()) {
        schedule();
    }
}

/// Blocks the current process (state `state`, reason `blocked`, or a sleep until tick `wake`)
/// and runs something else; returns once it has been woken.
pub fn block_current(state: u32, blocked: Option<Blocked>, wake: Option<u64>) {
    block_locked(TABLE.lock(), state, blocked, wake);
}

/// [`block_current`] with the table already locked by the caller (who checked, under the same
/// lock, that it must wait: no wake-up can slip in between).
pub fn block_locked(
    mut table: MutexGuard<'static, Table>,
    state: u32,
    blocked: Option<Blocked>,
    wake: Option<u64>,
) {
    let pid = table.current_pid();
    let current = table.current();
    if current.kill_pending {
        drop(table);
        super::exit_current(EXIT_KILLED);
    }
    current.state = state;
    current.blocked = blocked;
    if let Some(wake) = wake {
        table.sleep.insert(wake, pid);
    }
    switch_away(table);
}

/// Switches to the next ready process (or this CPU's idle context). Interrupts must be off.
pub fn schedule() {
    switch_away(TABLE.lock());
}

/// What a switch needs once the table lock is released.
struct Switch {
    save: *mut u64,
    leaving: *const AtomicBool,
    resume: u64,
    /// The incoming address space: a private root (0: none) and its directory entries.
    space: (u64, Used),
    top: u64,
}

/// Requeues the current process if it still runs, picks the next one and switches to it.
fn switch_away(mut table: MutexGuard<'static, Table>) {
    let cpu = percpu::index();
    let previous = table.cpus[cpu].current;
    let running = table.current().state == STATE_RUNNING;
    if running && previous != IDLE {
        table.current().state = STATE_READY;
        table.ready.push(previous);
    }
    // A CPU asked to park goes to its idle context, which parks it.
    let next = match crate::smp::park_requested(cpu) {
        true => IDLE,
        false => table.ready.pop().unwrap_or(IDLE),
    };
    crate::smp::set_idle(cpu, next == IDLE);
    if next == previous {
        table.current().state = STATE_RUNNING;
        return;
    }
    let Some(switch) = prepare(&mut table, cpu, previous, next) else {
        return;
    };
    drop(table);
    if switch.top != 0 {
        syscall_entry::set_kernel_stack(switch.top);
    }
    // No CR3 load: this CPU's tables take the incoming process's directory entries. The
    // outgoing process's tables are freed only once its `on_cpu` is clear, after this.
    cpu_roots::switch_to(switch.space.0, &switch.space.1);
    #[allow(unsafe_code)] // scheduler/boot glue over `arch`'s unsafe primitives
    // `save` and `leaving` point into this CPU's slot or a boxed process that is not freed
    // while its `on_cpu` is set (cleared by this very switch, after the save).
    // SAFETY: interrupts are off (callers); the pointers are live (above); `resume` was saved
    // by `switch` or prepared by `spawn` on a mapped kernel stack no CPU is on.
    unsafe {
        switch::switch(switch.save, switch.resume, switch.leaving)
    };
    reap_dead();
}

/// Marks `next` running on `cpu` (after any other CPU has left its stack) and returns the
/// switch from `previous` to it.
fn prepare(table: &mut Table, cpu: usize, previous: u64, next: u64) -> Option<Switch> {
    let (resume, space, top) = if next == IDLE {
        (table.cpus[cpu].idle_rsp, (0, Used::EMPTY), 0)
    } else {
        let process = table.processes.get_mut(&next)?;
        while process.on_cpu.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        process.on_cpu.store(true, Ordering::Relaxed);
        process.state = STATE_RUNNING;
        process.cpu = cpu as u32;
        // A kernel thread has no user half (its root is the kernel's own).
        let space = match process.root {
            0 => (0, Used::EMPTY),
            root if root == paging::kernel_root() => (0, Used::EMPTY),
            root => (root, process.used),
        };
        (process.saved_rsp, space, process.kernel_top)
    };
    table.cpus[cpu].current = next;
    let (save, leaving) = if previous == IDLE {
        (
            &raw mut table.cpus[cpu].idle_rsp,
            &raw const IDLE_LEAVING[cpu],
        )
    } else {
        let process = table.find(previous).expect("previous process");
        (&raw mut process.saved_rsp, &raw const process.on_cpu)
    };
    Some(Switch {
        save,
        leaving,
        resume,
        space,
        top,
    })
}

/// Frees the kernel stacks of reaped processes no CPU is on any more.
fn reap_dead() {
    let mut table = TABLE.lock();
    let dead = core::mem::take(&mut table.dead);
    for process in dead {
        if process.on_cpu.load(Ordering::Acquire) {
            table.dead.push(process);
        } else {
            release_stack(&mut table, &process);
        }
    }
}

/// Takes a dead (zombie) process out of the table; its kernel stack goes back to the free
/// slots now, or once the CPU still on it has left (`reap_dead`).
pub fn remove(table: &mut Table, pid: u64) {
    let Some(process) = table.processes.remove(&pid) else {
        return;
    };
    if process.on_cpu.load(Ordering::Acquire) {
        table.dead.push(process);
    } else {
        release_stack(table, &process);
    }
}

/// Returns a process's kernel stack slot to the free list, still mapped: the next process
/// reuses its pages, and no CPU can be left with a stale translation of it (no TLB shootdown).
fn release_stack(table: &mut Table, process: &Process) {
    if let Some(slot) = process.stack_slot {
        table.free_stack_slots.push(slot);
    }
}

/// A kernel stack for start-up use (an AP's idle or IST stack): its top, or `None` without
/// memory. Never freed.
pub fn allocate_stack_top() -> Option<u64> {
    allocate_kernel_stack(&mut TABLE.lock()).map(|(_, top)| top)
}

/// Takes a free kernel stack slot (still mapped) or maps a new one; returns `(slot, top)`, or
/// `None` without memory.
pub fn allocate_kernel_stack(table: &mut Table) -> Option<(u64, u64)> {
    if let Some(slot) = table.free_stack_slots.pop() {
        // Freed slots keep their pages mapped (`release_stack`).
        return Some((slot, kernel_stack_bottom(slot) + KERNEL_STACK_SIZE));
    }
    let slot = table.next_stack_slot;
    // The stack window's tables are built at boot for this many slots only: a slot beyond
    // would need a new kernel-half table, which `pagetables = locked` forbids.
    if slot >= MAX_KERNEL_STACKS {
        return None;
    }
    let top = map_kernel_stack(slot)?;
    table.next_stack_slot += 1;
    Some((slot, top))
}

/// Maps a fresh kernel stack in `slot` and returns its top; without memory, unmaps and frees
/// whatever it had mapped (so the slot goes back to the free list clean) and returns `None`.
fn map_kernel_stack(slot: u64) -> Option<u64> {
    let bottom = kernel_stack_bottom(slot);
    let mut frames = Frames;
    for page in (bottom..bottom + KERNEL_STACK_SIZE).step_by(PAGE_SIZE as usize) {
        let Some(frame) = frames.allocate() else {
            free_kernel_stack(slot);
            return None;
        };
        let flags = leaf_accessed(Access::ReadWrite.flags(true));
        if address_space::map(&mut frames, paging::kernel_root(), page, frame, flags).is_err() {
            frames.free(frame);
            free_kernel_stack(slot);
            return None;
        }
    }
    Some(bottom + KERNEL_STACK_SIZE)
}

/// Unmaps a slot no CPU has used yet (a mapping that failed half-way): no other CPU can have
/// its pages cached, so a local invalidation is enough.
fn free_kernel_stack(slot: u64) {
    let bottom = kernel_stack_bottom(slot);
    let mut frames = Frames;
    for page in (bottom..bottom + KERNEL_STACK_SIZE).step_by(PAGE_SIZE as usize) {
        if let Some(frame) = address_space::unmap(&mut frames, paging::kernel_root(), page) {
            phys::invalidate_page(page);
            frames.free(frame);
        }
    }
}
