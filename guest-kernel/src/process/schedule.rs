//! Round-robin scheduling: the timer tick (sleepers, console input, preemption of ring 3), the
//! switch itself, blocking, and the idle loop (HLT).

use super::{Blocked, Process, Table, IDLE, TABLE};
use crate::arch::phys::{self, Frames};
use crate::arch::{cpu, paging, switch, syscall_entry};
use crate::console;
use crate::mm::address_space::{self, PhysMemory};
use crate::mm::layout::kernel_stack_bottom;
use crate::mm::layout::KERNEL_STACK_SIZE;
use crate::mm::page_table::PAGE_SIZE;
use crate::time;
use alloc::boxed::Box;
use rampart_kernel_abi::syscall::{STATE_READY, STATE_RUNNING};

/// Registers the boot context as the idle task (pid 0).
pub fn init() {
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
            stack_slot: None,
            kernel_top: 0,
            saved_rsp: 0,
            brk_start: 0,
            brk: 0,
            exit_code: 0,
            ticks: 0,
        }),
    );
    table.current = IDLE;
}

/// The idle task: runs whatever is ready, else halts until the next interrupt.
pub fn idle_loop() -> ! {
    loop {
        cpu::disable_interrupts();
        schedule();
        cpu::enable_and_halt();
    }
}

/// Called by the timer interrupt after EOI: wakes due sleepers and console readers, charges the
/// tick, and preempts a process interrupted in ring 3.
pub fn timer_tick(from_user: bool) {
    let line_ready = console::poll_input();
    {
        let mut table = TABLE.lock();
        if table.processes.is_empty() {
            return;
        }
        let now = time::ticks();
        let due: alloc::vec::Vec<_> = table.sleep.wake_due(now).collect();
        due.into_iter().for_each(|pid| table.wake(pid));
        if line_ready {
            let readers: alloc::vec::Vec<_> = table
                .processes
                .values()
                .filter(|p| p.blocked == Some(Blocked::Console))
                .map(|p| p.pid)
                .collect();
            readers.into_iter().for_each(|pid| table.wake(pid));
        }
        table.current().ticks += 1;
    }
    if from_user {
        schedule();
    }
}

/// Blocks the current process (state `state`, reason `blocked`, or a sleep until tick `wake`)
/// and runs something else; returns once it has been woken.
pub fn block_current(state: u32, blocked: Option<Blocked>, wake: Option<u64>) {
    {
        let mut table = TABLE.lock();
        let pid = table.current;
        let current = table.current();
        current.state = state;
        current.blocked = blocked;
        if let Some(wake) = wake {
            table.sleep.insert(wake, pid);
        }
    }
    schedule();
}

/// Switches to the next ready process (or idle). Interrupts must be off.
pub fn schedule() {
    let (save, resume, root, top) = {
        let mut table = TABLE.lock();
        let previous = table.current;
        let running = table.current().state == STATE_RUNNING;
        if running && previous != IDLE {
            table.current().state = STATE_READY;
            table.ready.push(previous);
        }
        let next = table.ready.pop().unwrap_or(IDLE);
        table.current = next;
        let process = table.current();
        process.state = STATE_RUNNING;
        if next == previous {
            return;
        }
        let (resume, root, top) = (process.saved_rsp, process.root, process.kernel_top);
        let save = &raw mut table
            .processes
            .get_mut(&previous)
            .expect("previous")
            .saved_rsp;
        (save, resume, root, top)
    };
    if top != 0 {
        syscall_entry::set_kernel_stack(top);
    }
    #[allow(unsafe_code)] // scheduler/boot glue over `arch`'s unsafe primitives
    // SAFETY: `root` is the kernel root (idle) or a live process root sharing the kernel half;
    // a process's root is freed only after it stopped being current.
    unsafe {
        paging::load_root(root)
    };
    #[allow(unsafe_code)] // scheduler/boot glue over `arch`'s unsafe primitives
    // SAFETY: interrupts are off (callers); `save` points into a boxed table entry that stays
    // until the process is reaped, which never happens while it is current or before this
    // store; `resume` was saved by `switch` or prepared by `spawn` on a mapped kernel stack.
    unsafe {
        switch::switch(save, resume)
    };
    reap_dead();
}

/// Frees the kernel stacks of dead processes that are not current (the CPU is off them).
fn reap_dead() {
    let mut table = TABLE.lock();
    let current = table.current;
    let dead = core::mem::take(&mut table.dead);
    for pid in dead {
        if pid == current {
            table.dead.push(pid);
        } else {
            remove(&mut table, pid);
        }
    }
}

/// Removes a dead (zombie, not current) process and frees its kernel stack.
pub fn remove(table: &mut Table, pid: u64) {
    let Some(process) = table.processes.remove(&pid) else {
        return;
    };
    if let Some(slot) = process.stack_slot {
        free_kernel_stack(slot);
        table.free_stack_slots.push(slot);
    }
}

/// Takes a free kernel stack slot (or a new one) and maps its stack; returns `(slot, top)`, or
/// `None` without memory (the slot goes back to the free list).
pub fn allocate_kernel_stack(table: &mut Table) -> Option<(u64, u64)> {
    let slot = match table.free_stack_slots.pop() {
        Some(slot) => slot,
        None => {
            table.next_stack_slot += 1;
            table.next_stack_slot - 1
        }
    };
    let Some(top) = map_kernel_stack(slot) else {
        table.free_stack_slots.push(slot);
        return None;
    };
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
        let flags = crate::mm::page_table::Access::ReadWrite.flags(true);
        if address_space::map(&mut frames, paging::kernel_root(), page, frame, flags).is_err() {
            frames.free(frame);
            free_kernel_stack(slot);
            return None;
        }
    }
    Some(bottom + KERNEL_STACK_SIZE)
}

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
