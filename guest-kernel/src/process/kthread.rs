//! Kernel threads: ring-0 tasks the scheduler runs like processes, in the kernel's address
//! space (no user half) on a kernel stack of their own. A CPU exception in one ends only that
//! thread (the attack suite relies on it: a blocked attempt faults its thread); an exception
//! anywhere else in ring 0 stays fatal.
// Only the attack suite starts kernel threads so far.
#![cfg_attr(not(feature = "attacks"), allow(dead_code))]

use super::schedule::allocate_kernel_stack;
use super::{exit_current, name_text, NewProcess, IDLE, TABLE};
use crate::arch::kthread::{self, Body};
use crate::arch::paging;
use crate::console::kprintln;
use crate::sched::queue::Pid;
use crate::trap::{exception_mnemonic, InterruptFrame};
use rampart_kernel_abi::syscall::Errno;

/// Exit codes of threads ended by an exception: this minus the vector.
const FAULT_EXIT_BASE: i64 = -1000;

/// The exit code of a thread ended by exception `vector`.
pub const fn fault_exit_code(vector: u64) -> i64 {
    FAULT_EXIT_BASE - vector as i64
}

/// The exception that ended a thread with exit code `code`, if one did.
pub fn fault_vector(code: i64) -> Option<u64> {
    let vector = FAULT_EXIT_BASE.checked_sub(code)?;
    (0..32).contains(&vector).then_some(vector as u64)
}

/// Starts `body(argument)` as kernel thread `name`, a child of `parent`.
pub fn spawn_kernel_thread(
    name: &str,
    body: Body,
    argument: u64,
    parent: Pid,
) -> Result<Pid, Errno> {
    let mut table = TABLE.lock();
    let (slot, kernel_top) = allocate_kernel_stack(&mut table).ok_or(Errno::NoMemory)?;
    Ok(table.add_ready(NewProcess {
        parent,
        name,
        // The kernel's own root: what tells a kernel thread from a process (and what
        // `exit::release` never frees).
        root: paging::kernel_root(),
        used: crate::mm::cpu_roots::Used::EMPTY,
        kernel_stack: (slot, kernel_top),
        saved_rsp: kthread::prepare_kernel_stack(kernel_top, body, argument),
        brk: 0,
    }))
}

/// True if this CPU runs a kernel thread. `false` when the process table stays locked: the
/// exception then struck the kernel proper on this CPU (threads never hold it at a faulting
/// instruction).
pub fn in_kernel_thread() -> bool {
    // Another CPU may hold the lock briefly; this CPU holding it never lets go.
    let Some(mut table) = (0..LOCK_ATTEMPTS).find_map(|_| TABLE.try_lock()) else {
        return false;
    };
    table.current_pid() != IDLE && table.current().root == paging::kernel_root()
}

/// Attempts at the table lock before an exception is taken for the kernel's own.
const LOCK_ATTEMPTS: u32 = 10_000_000;

/// An exception in a kernel thread: report it and end the thread (exit code
/// [`fault_exit_code`]). The frame on the thread's stack is abandoned with the stack.
pub fn kernel_thread_fault(frame: &InterruptFrame, cr2: u64) -> ! {
    let (pid, name) = TABLE.lock().current_and_name();
    let name = name_text(&name);
    let mnemonic = exception_mnemonic(u8::try_from(frame.vector).unwrap_or(u8::MAX));
    kprintln!(
        "kernel thread {pid} ({name}) ended by {mnemonic} (vector {}) at rip={:#x} cr2={cr2:#x}",
        frame.vector,
        frame.rip
    );
    exit_current(fault_exit_code(frame.vector))
}
