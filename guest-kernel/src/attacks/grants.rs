//! Attacks on GrantExecute's comparison. `grant-prefix`: GrantExecute of the first 16 bytes of
//! a measured text page (the rest of the page zero): code that ends mid-instruction, which no
//! program has. `grant-race` (hypervisor/DESIGN.md invariant 9): this CPU asks GrantExecute for a
//! heap copy of a measured program-text page while a writer thread on another CPU overwrites the
//! page's first 8 bytes with `mov eax, 0x1337c0de; ret` after a delay. The delay sweeps the
//! hypercall's duration (measured first) over [`ROUNDS`] rounds, so some write lands in every phase
//! of it: before the hypervisor takes write away (the compare sees it and refuses), after (the
//! writer faults), and, against a hypervisor that compares while other vCPUs can still write,
//! between its compare and its shootdown: the grant then returns 0 with the changed bytes, and
//! calling them at CPL0 returns 0x1337c0de. Natively there is no GrantExecute: the write and the
//! call simply work.
#![allow(unsafe_code)] // the attack itself; each block says why it is harmless

use super::list::{alias, scratch_frame};
use super::verdict::Attempt;
use crate::arch::{attack, cpu, hypercall, phys};
use crate::console::kprintln;
use crate::loader::elf;
use crate::mm::layout::phys_to_virt;
use crate::mm::page_table::{PAGE_SIZE, PRESENT};
use crate::process;
use core::sync::atomic::{AtomicU64, Ordering};
use rampart_hv_abi::Hypercall;
use rampart_kernel_abi::initrd::Initrd;

/// Rounds of the sweep. Against the hypervisor before the fix (compare, then R-X, then the
/// shootdown) the sweep won in round 6 on Bochs haswell with 2 CPUs and tigerlake with 4 (the
/// row stops at the first win); after it, all 96 rounds lose: a few writes land before the
/// freeze (the compare refuses), the rest fault.
const ROUNDS: u64 = 96;
/// `mov eax, 0x1337c0de; ret; nop; nop`, little-endian.
const PAYLOAD: u64 = u64::from_le_bytes([0xb8, 0xde, 0xc0, 0x37, 0x13, 0xc3, 0x90, 0x90]);
const MAGIC: u64 = 0x1337_c0de;
/// TSC cycles to wait for the writer to start on another CPU.
const START_CYCLES: u64 = 500_000_000;

/// The round the next writer serves, the round it is ready for, the round to go, and the
/// cycles it waits after the go before it writes.
static NEXT: AtomicU64 = AtomicU64::new(0);
static READY: AtomicU64 = AtomicU64::new(0);
static GO: AtomicU64 = AtomicU64::new(0);
static DELAY: AtomicU64 = AtomicU64::new(0);

/// One writer per round (a kernel thread; a blocked write ends it): waits for the go, waits
/// the round's delay, writes the payload once.
extern "sysv64" fn writer(page: u64) -> ! {
    let round = NEXT.load(Ordering::SeqCst);
    READY.store(round, Ordering::SeqCst);
    let start = cpu::rdtsc();
    while GO.load(Ordering::SeqCst) != round {
        if cpu::rdtsc().wrapping_sub(start) > START_CYCLES {
            process::exit_current(1);
        }
        core::hint::spin_loop();
    }
    let delay = DELAY.load(Ordering::SeqCst);
    let go = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(go) < delay {
        core::hint::spin_loop();
    }
    // SAFETY: the page is a scratch frame of this attack, in the direct map.
    unsafe { core::ptr::write_volatile(page as *mut u64, PAYLOAD) };
    process::exit_current(0)
}

/// A page of measured program text: its initrd offset and bytes (the first whole text page of
/// the first program that has one).
fn measured_text_page() -> Option<(u64, &'static [u8])> {
    let module = crate::boot::BOOT_INFO
        .get()?
        .modules()
        .iter()
        .find(|m| m.name() == "initrd")?;
    let bytes = phys::module_bytes(module.start, module.length);
    let archive = Initrd::parse(bytes).ok()?;
    let page = archive.files().find_map(|file| {
        let program = elf::parse(file.data).ok()?;
        let text = program
            .segments()
            .iter()
            .find(|s| s.executable && s.filesz >= PAGE_SIZE && s.offset % PAGE_SIZE == 0)?;
        let offset = file.offset as u64 + text.offset;
        Some((
            offset,
            &bytes[offset as usize..(offset + PAGE_SIZE) as usize],
        ))
    });
    page
}

/// Calls the payload through an executable kernel alias of `frame`.
fn run_payload(frame: u64) -> Attempt {
    let Some(code) = alias(frame, PRESENT) else {
        return Attempt::NotApplicable("out of memory");
    };
    // SAFETY: the page starts with `mov eax, 0x1337c0de; ret` (checked by the caller);
    // natively and in a won race it runs and returns, otherwise EPT stops the fetch and this
    // thread dies.
    match unsafe { attack::call_returning(code) } & 0xffff_ffff {
        MAGIC => Attempt::Done,
        _ => Attempt::NotApplicable("the payload returned something else"),
    }
}

fn grant(frame: u64, offset: u64) -> i64 {
    grant_bytes(frame, PAGE_SIZE, offset)
}

fn grant_bytes(frame: u64, length: u64, offset: u64) -> i64 {
    // SAFETY: GrantExecute writes no guest memory (a scratch frame's EPT rights change);
    // natively VMCALL raises #UD, ending this thread.
    unsafe { hypercall::vmcall(Hypercall::GrantExecute as u64, frame, length, offset) }
}

/// Bytes of the prefix `grant-prefix` asks for.
const PREFIX: usize = 16;

pub fn grant_prefix() -> Attempt {
    let Some((offset, measured)) = measured_text_page() else {
        return Attempt::NotApplicable("no program with a whole text page");
    };
    let Some(frame) = scratch_frame(&measured[..PREFIX]) else {
        return Attempt::NotApplicable("out of memory");
    };
    match grant_bytes(frame, PREFIX as u64, offset) {
        0 => {
            if let Some(rampart) = hypercall::rampart() {
                rampart.revoke_execute(frame, PAGE_SIZE);
            }
            Attempt::Done
        }
        error => Attempt::Refused(error),
    }
}

pub fn grant_race() -> Attempt {
    let Some((offset, measured)) = measured_text_page() else {
        return Attempt::NotApplicable("no program with a whole text page");
    };
    let Some(frame) = scratch_frame(measured) else {
        return Attempt::NotApplicable("out of memory");
    };
    let page = phys_to_virt(frame);
    if crate::smp::online().count() < 2 {
        return Attempt::NotApplicable("one CPU");
    }
    let Some(rampart) = hypercall::rampart() else {
        // Natively nothing checks: write the payload and run it.
        // SAFETY: a scratch frame of this attack, in the direct map.
        unsafe { core::ptr::write_volatile(page as *mut u64, PAYLOAD) };
        return run_payload(frame);
    };
    // How long a grant takes: the sweep covers 1.5 times that.
    let started = cpu::rdtsc();
    if grant(frame, offset) != 0 {
        return Attempt::NotApplicable("the measured page was not granted");
    }
    let grant_cycles = cpu::rdtsc().wrapping_sub(started);
    rampart.revoke_execute(frame, PAGE_SIZE);
    let me = process::current_pid();
    let (mut refused, mut faulted, mut won) = (0, 0, None);
    for round in 1..=ROUNDS {
        phys::write_bytes(frame, measured);
        DELAY.store(round * grant_cycles * 3 / 2 / ROUNDS, Ordering::SeqCst);
        NEXT.store(round, Ordering::SeqCst);
        let Ok(pid) = process::spawn_kernel_thread("grant-race-writer", writer, page, me) else {
            return Attempt::NotApplicable("out of memory");
        };
        let start = cpu::rdtsc();
        while READY.load(Ordering::SeqCst) != round
            && cpu::rdtsc().wrapping_sub(start) < START_CYCLES
        {
            core::hint::spin_loop();
        }
        if READY.load(Ordering::SeqCst) != round {
            let _ = process::wait(pid);
            return Attempt::NotApplicable("the writer did not run on another CPU");
        }
        GO.store(round, Ordering::SeqCst);
        let result = grant(frame, offset);
        let ending = process::wait(pid).map_or(0, |(_, code)| code);
        if process::fault_vector(ending).is_some() {
            faulted += 1;
        }
        if result != 0 {
            refused += 1;
            continue;
        }
        // SAFETY: the page stays readable (R-X now).
        let first = unsafe { core::ptr::read_volatile(page as *const u64) };
        if first == PAYLOAD {
            won = Some(round);
            break;
        }
        rampart.revoke_execute(frame, PAGE_SIZE);
    }
    kprintln!(
        "attacks: detail: grant-race: {ROUNDS} rounds, writes 0..{} cycles after the go (a grant takes {grant_cycles}): {refused} refused (written before the compare), {faulted} writer faults, won in round {won:?}",
        grant_cycles * 3 / 2
    );
    let Some(_) = won else {
        return Attempt::NoEffect;
    };
    let outcome = run_payload(frame);
    rampart.revoke_execute(frame, PAGE_SIZE);
    outcome
}

/// `grant-cpl0`: GrantExecute of a heap copy of a measured text page, mapped as a supervisor
/// page and called at CPL0 (at its first `ret` byte, so it returns at once). Without
/// mode-based execute control EPT's execute right covers every CPL, so this works under
/// Rampart too (a stated limit); with it, granted text is user-mode execute only and the fetch
/// is refused (`w^x-no-exec`). Natively nothing checks.
pub fn grant_cpl0() -> Attempt {
    const RET: u8 = 0xc3;
    let Some((offset, measured)) = measured_text_page() else {
        return Attempt::NotApplicable("no program with a whole text page");
    };
    let Some(ret_at) = measured.iter().position(|&b| b == RET) else {
        return Attempt::NotApplicable("no ret byte in the text page");
    };
    let Some(frame) = scratch_frame(measured) else {
        return Attempt::NotApplicable("out of memory");
    };
    let rampart = hypercall::rampart();
    if rampart.is_some() && grant(frame, offset) != 0 {
        return Attempt::NotApplicable("the measured page was not granted");
    }
    let Some(code) = alias(frame, PRESENT) else {
        return Attempt::NotApplicable("out of memory");
    };
    // SAFETY: the byte at `ret_at` is 0xC3, a `ret`; where EPT refuses the supervisor fetch
    // this thread dies of #VE instead.
    unsafe { attack::call(code + ret_at as u64) };
    if let Some(rampart) = rampart {
        rampart.revoke_execute(frame, PAGE_SIZE);
    }
    Attempt::Done
}
