//! Attacks on the EPT policy's finer points. `grant-header`: GrantExecute of a heap page whose
//! bytes equal the initrd's first program page (its ELF header, in no executable segment): the
//! bytes are measured, but only program text may become executable. `stale-tlb`: while another
//! CPU keeps writing a page, this one makes it read-only by ProtectRange; once the hypercall
//! returns, no write may land (every vCPU must have dropped its writable translation), so the
//! writer's next write is its last (#VE, `protected-range`).
#![allow(unsafe_code)] // the attacks themselves; each block says why it is harmless

use super::verdict::Attempt;
use crate::arch::phys::{self, Frames};
use crate::arch::{cpu, hypercall};
use crate::console::kprintln;
use crate::mm::address_space::PhysMemory;
use crate::mm::layout::phys_to_virt;
use crate::mm::page_table::PAGE_SIZE;
use crate::process;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use rampart_hv_abi::{Access, Hypercall};
use rampart_kernel_abi::initrd::Initrd;

pub fn grant_header() -> Attempt {
    let initrd = crate::boot::BOOT_INFO
        .get()
        .and_then(|info| info.modules().iter().find(|m| m.name() == "initrd"))
        .map(|m| phys::module_bytes(m.start, m.length));
    let Some(bytes) = initrd else {
        return Attempt::NotApplicable("no initrd");
    };
    let page = Initrd::parse(bytes).ok().and_then(|archive| {
        let file = archive
            .files()
            .find(|f| f.data.len() >= PAGE_SIZE as usize)?;
        Some((file.offset, &file.data[..PAGE_SIZE as usize]))
    });
    let Some((offset, header)) = page else {
        return Attempt::NotApplicable("no program of a page or more");
    };
    let Some(frame) = super::list::scratch_frame(header) else {
        return Attempt::NotApplicable("out of memory");
    };
    let number = Hypercall::GrantExecute as u64;
    // SAFETY: GrantExecute writes no guest memory; natively VMCALL raises #UD, ending this
    // thread.
    let result = unsafe { hypercall::vmcall(number, frame, PAGE_SIZE, offset as u64) };
    if result == 0 {
        // Granted: give the page back its write right before `cleanup` frees it.
        if let Some(rampart) = hypercall::rampart() {
            rampart.revoke_execute(frame, PAGE_SIZE);
        }
        return Attempt::Done;
    }
    Attempt::Refused(result)
}

/// The writer's last value written (0: not started) and the flag that ends it.
static WRITER_SEQUENCE: AtomicU64 = AtomicU64::new(0);
static WRITER_STOP: AtomicBool = AtomicBool::new(false);
/// TSC cycles to wait for the writer to start, and to let stale writes land after the return.
const START_CYCLES: u64 = 500_000_000;
const SETTLE_CYCLES: u64 = 20_000_000;
/// Pause loop while checking that the writer runs in parallel.
const PARALLEL_SPINS: u32 = 100_000;

/// The writer (a kernel thread of its own): writes 1, 2, 3, ... to the page until stopped (or
/// until a write faults, which ends the thread).
extern "sysv64" fn writer(page: u64) -> ! {
    let mut sequence = 0u64;
    while !WRITER_STOP.load(Ordering::SeqCst) {
        sequence += 1;
        // SAFETY: the page is a frame the attack allocated for this, in the direct map.
        unsafe { core::ptr::write_volatile(page as *mut u64, sequence) };
        WRITER_SEQUENCE.store(sequence, Ordering::SeqCst);
    }
    process::exit_current(0)
}

/// Spins (interrupts stay off: the writer may hold the CPU whose tick keeps time) until `done`
/// holds or `cycles` TSC cycles passed.
fn spin_until(cycles: u64, done: impl Fn() -> bool) -> bool {
    let start = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(start) < cycles {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    done()
}

pub fn stale_tlb() -> Attempt {
    if hypercall::rampart().is_none() {
        return Attempt::NotApplicable("no hypervisor");
    }
    if crate::smp::online().count() < 2 {
        return Attempt::NotApplicable("one CPU");
    }
    // Never freed: once read-only in EPT it cannot go back to the allocator.
    let Some(frame) = Frames.allocate() else {
        return Attempt::NotApplicable("out of memory");
    };
    let page = phys_to_virt(frame);
    WRITER_SEQUENCE.store(0, Ordering::SeqCst);
    WRITER_STOP.store(false, Ordering::SeqCst);
    let me = process::current_pid();
    let Ok(pid) = process::spawn_kernel_thread("stale-tlb-writer", writer, page, me) else {
        return Attempt::NotApplicable("out of memory");
    };
    let started = spin_until(START_CYCLES, || WRITER_SEQUENCE.load(Ordering::SeqCst) > 0);
    let first = WRITER_SEQUENCE.load(Ordering::SeqCst);
    for _ in 0..PARALLEL_SPINS {
        core::hint::spin_loop();
    }
    let parallel = WRITER_SEQUENCE.load(Ordering::SeqCst) > first;
    if !started || !parallel {
        WRITER_STOP.store(true, Ordering::SeqCst);
        let _ = process::wait(pid);
        return Attempt::NotApplicable("the writer did not run on another CPU");
    }
    let number = Hypercall::ProtectRange as u64;
    // SAFETY: ProtectRange to read-only on a frame only this attack and its writer use.
    let result =
        unsafe { hypercall::vmcall(number, frame, PAGE_SIZE, u64::from(Access::READ.bits())) };
    // SAFETY: the page stays readable.
    let at_return = unsafe { core::ptr::read_volatile(page as *const u64) };
    spin_until(SETTLE_CYCLES, || false);
    // SAFETY: as above.
    let settled = unsafe { core::ptr::read_volatile(page as *const u64) };
    WRITER_STOP.store(true, Ordering::SeqCst);
    let ended = process::wait(pid).map_or(0, |(_, code)| code);
    let late = settled.wrapping_sub(at_return);
    kprintln!(
        "attacks: detail: stale-tlb: ProtectRange -> {result}, writer pid {pid} wrote {at_return} before the return, {late} after; writer exit code {ended}"
    );
    match (result, late) {
        (0, 0) => Attempt::NoEffect,
        (0, _) => Attempt::Done,
        (error, _) => Attempt::Refused(error),
    }
}
