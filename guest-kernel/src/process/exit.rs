//! The end of processes: exit, kill, faults in ring 3, and waiting for children. When init
//! (pid 1) ends, the kernel prints the result line and stops.

use super::schedule::{block_locked, remove, schedule};
use super::{name_text, Blocked, Table, ANY_CHILD, IDLE, TABLE};
use crate::arch::phys;
use crate::arch::{cpu_roots, paging};
use crate::console::kprintln;
use crate::mm::address_space;
use crate::mm::cpu_roots::Used;
use crate::trap::{InterruptFrame, UserFault};
use core::sync::atomic::Ordering;
use rampart_kernel_abi::syscall::{
    Errno, EXIT_FAULTED, EXIT_KILLED, STATE_RUNNING, STATE_WAITING, STATE_ZOMBIE,
};

/// The init process: its exit ends the run.
pub const INIT: u64 = 1;

/// Marks `pid` dead with `code`, detaches it from every queue and orphans its children.
/// Returns its address-space root (to destroy; 0 if none) and the parent to wake once that is
/// done ([`wake_parent`]): a parent on another CPU would otherwise go on before the exit is
/// logged.
fn terminate(table: &mut Table, pid: u64, code: i64) -> (u64, Option<u64>) {
    table.ready.remove(pid);
    table.sleep.remove(pid);
    let Some(process) = table.processes.get_mut(&pid) else {
        return (0, None);
    };
    process.state = STATE_ZOMBIE;
    process.blocked = None;
    process.exit_code = code;
    let parent = process.parent;
    let root = core::mem::take(&mut process.root);
    let orphans: alloc::vec::Vec<u64> = table
        .processes
        .values_mut()
        .filter(|p| p.parent == pid && p.pid != IDLE)
        .map(|p| {
            p.parent = IDLE;
            p.pid
        })
        .collect();
    for orphan in orphans {
        if table.processes[&orphan].state == STATE_ZOMBIE {
            remove(table, orphan);
        }
    }
    match table.processes.get(&parent).map(|p| p.blocked) {
        Some(Some(Blocked::Child(wanted))) if wanted == pid || wanted == ANY_CHILD => {
            return (root, Some(parent));
        }
        Some(_) if parent != IDLE => {}
        _ => remove(table, pid),
    }
    (root, None)
}

/// Wakes `parent` if it still waits for child `pid` (which has exited).
fn wake_parent(parent: Option<u64>, pid: u64) {
    let Some(parent) = parent else {
        return;
    };
    let mut table = TABLE.lock();
    if let Some(Some(Blocked::Child(wanted))) = table.processes.get(&parent).map(|p| p.blocked) {
        if wanted == pid || wanted == ANY_CHILD {
            table.wake(parent);
        }
    }
}

/// Frees an address space (loaded on no CPU: it left its last one, whose tables then took
/// another process's entries or none) and logs the frame counts.
fn release(pid: u64, name: &str, code: i64, root: u64) {
    // A kernel thread runs on the kernel's own root, which outlives it.
    if root == 0 || root == paging::kernel_root() {
        return;
    }
    let before = phys::free_frames();
    let freed = address_space::destroy(&mut phys::Frames, root);
    kprintln!(
        "pid {pid} ({name}) exited with code {code}: {freed} frames freed, free frames {before} -> {}",
        phys::free_frames()
    );
}

/// Ends the current process with `code`; never returns. Its address space is freed and the
/// exit logged before it becomes a zombie, so a parent on another CPU that reaps it cannot
/// print ahead of that line.
pub fn exit_current(code: i64) -> ! {
    let (pid, name, root) = {
        let mut table = TABLE.lock();
        let pid = table.current_pid();
        let current = table.current();
        (pid, current.name, core::mem::take(&mut current.root))
    };
    let name = name_text(&name);
    // Its tables are freed below: this CPU's lower half (and TLB) must leave them first.
    cpu_roots::switch_to(0, &Used::EMPTY);
    release(pid, name, code, root);
    if pid == INIT {
        crate::boot::finish(code);
    }
    let (_, parent) = terminate(&mut TABLE.lock(), pid, code);
    wake_parent(parent, pid);
    schedule();
    unreachable!("a dead process was resumed");
}

/// `kill(pid)`: ends `pid` with EXIT_KILLED and returns once it has ended. One running on
/// another CPU is asked to end itself (`kill_pending` and a kick: it exits on the interrupt
/// if in ring 3, else when it would block or at its next tick); this waits for that, without
/// the table lock, and ends the process itself if it left its CPU alive (a yield, a
/// preemption).
pub fn kill(pid: u64) -> Result<u64, Errno> {
    let mut asked = false;
    let ((root, parent), name) = loop {
        let mut table = TABLE.lock();
        if pid == table.current_pid() {
            drop(table);
            exit_current(EXIT_KILLED);
        }
        let target = table.processes.get_mut(&pid);
        let Some(target) = target.filter(|p| p.pid != IDLE && p.state != STATE_ZOMBIE) else {
            // Once asked, it ended itself (the zombie may already be reaped).
            return if asked { Ok(0) } else { Err(Errno::NoProcess) };
        };
        if target.on_cpu.load(Ordering::Acquire) {
            if target.state == STATE_RUNNING && !asked {
                target.kill_pending = true;
                asked = true;
                crate::smp::kick(target.cpu as usize);
            }
            drop(table);
            crate::smp::wait_politely();
            continue;
        }
        let name = target.name;
        break (terminate(&mut table, pid, EXIT_KILLED), name);
    };
    let name = name_text(&name);
    release(pid, name, EXIT_KILLED, root);
    if pid == INIT {
        crate::boot::finish(EXIT_KILLED);
    }
    wake_parent(parent, pid);
    Ok(0)
}

/// A CPU exception in ring 3: report it and end the process with EXIT_FAULTED.
pub fn user_fault(frame: &InterruptFrame, cr2: u64) -> ! {
    let (pid, name) = TABLE.lock().current_and_name();
    let name = name_text(&name);
    let what = UserFault {
        vector: frame.vector,
        error_code: frame.error_code,
        cr2,
    };
    kprintln!("pid {pid} ({name}) killed: {what} at rip={:#x}", frame.rip);
    exit_current(EXIT_FAULTED)
}

/// `wait(pid)`: blocks until child `pid` (or any child) has exited; returns (pid, code).
pub fn wait(pid: u64) -> Result<(u64, i64), Errno> {
    loop {
        {
            let mut table = TABLE.lock();
            let me = table.current_pid();
            if pid != ANY_CHILD {
                match table.processes.get(&pid) {
                    None => return Err(Errno::NoProcess),
                    Some(p) if p.parent != me || pid == IDLE => return Err(Errno::NoChild),
                    Some(_) => {}
                }
            }
            let mut children = table
                .processes
                .values()
                .filter(|p| p.parent == me && p.pid != IDLE && (pid == ANY_CHILD || p.pid == pid));
            let Some(first) = children.next() else {
                return Err(Errno::NoChild);
            };
            let zombie = core::iter::once(first)
                .chain(children)
                .find(|p| p.state == STATE_ZOMBIE)
                .map(|p| (p.pid, p.exit_code));
            if let Some((child, code)) = zombie {
                remove(&mut table, child);
                return Ok((child, code));
            }
            // Still locked: a child's exit cannot slip in before this process is parked.
            block_locked(table, STATE_WAITING, Some(Blocked::Child(pid)), None);
        }
    }
}
