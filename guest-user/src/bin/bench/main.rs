//! `bench [quick]`: what protection costs, measured with the TSC (`lfence; rdtsc`) as the
//! median of repeated rounds: null system call, context switch (yield ping-pong against
//! `bench partner`), first-touch page fault (fresh heap pages), spawn+exit+wait of `true`, and
//! the timer tick (TSC gaps in a tight loop). Around each benchmark the hypervisor's exit
//! counters are read; one `bench: name=...` line per benchmark (see `rampart_user::bench`),
//! then `bench: done`. `quick` runs fewer rounds and operations (the CI check). The SMP rows
//! (module `smp`) follow; `bench smp [quick]` runs only those.
#![cfg_attr(target_os = "none", no_std, no_main)]

mod smp;

use rampart_user::args::split_first;
use rampart_user::bench::{median, Bracket, Report};
use rampart_user::heap::Fresh;
use rampart_user::{println, sys, tsc, Errno};

rampart_user::entry!(
    bench_main,
    "[quick|smp] what protection costs: cycles and VM exits per operation"
);

/// How much of each benchmark to run.
struct Plan {
    rounds: usize,
    syscalls: u64,
    yields: u64,
    pages: u64,
    spawns: u64,
    /// Milliseconds of tight loop watched for timer ticks.
    tick_ms: u64,
}

const FULL: Plan = Plan {
    rounds: 11,
    syscalls: 2_000,
    yields: 500,
    pages: 64,
    spawns: 4,
    tick_ms: 500,
};

const QUICK: Plan = Plan {
    rounds: 5,
    syscalls: 500,
    yields: 100,
    pages: 16,
    spawns: 1,
    tick_ms: 100,
};

const MAX_ROUNDS: usize = 11;
/// The tiny program spawned by the spawn benchmark.
const TINY_PROGRAM: &str = "true";

fn bench_main(args: &str) -> i64 {
    let (first, rest) = split_first(args);
    match first {
        "partner" => loop {
            sys::yield_now();
        },
        "par-child" | "tick-child" => return smp::child(first, rest),
        _ => {}
    }
    let only_smp = first == "smp";
    let quick = if only_smp {
        split_first(rest).0 == "quick"
    } else {
        first == "quick"
    };
    let (plan, smp_plan) = if quick {
        (&QUICK, &smp::QUICK)
    } else {
        (&FULL, &smp::FULL)
    };
    let overhead = Bracket::calibrate();
    println!(
        "bench: start rounds={} bracket_cycles={overhead}",
        plan.rounds
    );
    let cycles_per_ms = tsc_per_ms();
    let mut code = 0;
    if !only_smp {
        code = single(plan, overhead, cycles_per_ms);
    }
    if let Err(err) = smp::run(smp_plan, overhead, cycles_per_ms) {
        println!("bench: smp failed: {}", err.name());
        code = 1;
    }
    println!("bench: done");
    code
}

/// The one-CPU rows: syscall, switch, fault, spawn, tick. The exit code so far.
fn single(plan: &Plan, overhead: u64, cycles_per_ms: u64) -> i64 {
    let mut code = 0;
    syscall(plan, overhead);
    let results = [
        ("switch", switch(plan, overhead)),
        ("fault", fault(plan, overhead)),
        ("spawn", spawn(plan, overhead)),
    ];
    for (name, result) in results {
        if let Err(err) = result {
            println!("bench: {name} failed: {}", err.name());
            code = 1;
        }
    }
    tick(plan, overhead, cycles_per_ms);
    code
}

/// Runs `body` (which performs `ops` operations) `rounds` times; the median cycles per op.
fn per_op(
    rounds: usize,
    ops: u64,
    mut body: impl FnMut() -> Result<(), Errno>,
) -> Result<u64, Errno> {
    let mut samples = [0u64; MAX_ROUNDS];
    let rounds = rounds.min(MAX_ROUNDS);
    for sample in &mut samples[..rounds] {
        let start = tsc::now();
        body()?;
        *sample = tsc::now().wrapping_sub(start) / ops.max(1);
    }
    Ok(median(&mut samples[..rounds]))
}

fn report(name: &str, ops: u64, cycles_per_op: u64, bracket: Bracket, overhead: u64) {
    let exits = bracket.close(overhead);
    let line = Report {
        name,
        ops,
        cycles_per_op,
        exits,
        extra: &[],
    };
    println!("{line}");
}

/// getpid round trips.
fn syscall(plan: &Plan, overhead: u64) {
    let bracket = Bracket::open();
    let cycles = per_op(plan.rounds, plan.syscalls, || {
        for _ in 0..plan.syscalls {
            core::hint::black_box(sys::getpid());
        }
        Ok(())
    });
    let ops = plan.rounds as u64 * plan.syscalls;
    report("syscall", ops, cycles.unwrap_or(0), bracket, overhead);
}

/// Yields against a partner that yields back: each yield is two switches.
fn switch(plan: &Plan, overhead: u64) -> Result<(), Errno> {
    let partner = sys::spawn("bench", "partner")?;
    // Let the partner reach its loop so every measured yield is a real switch.
    sys::yield_now();
    let bracket = Bracket::open();
    let cycles = per_op(plan.rounds, 2 * plan.yields, || {
        for _ in 0..plan.yields {
            sys::yield_now();
        }
        Ok(())
    });
    let exits = bracket.close(overhead);
    sys::kill(partner)?;
    sys::wait(Some(partner))?;
    let ops = plan.rounds as u64 * 2 * plan.yields;
    let line = Report {
        name: "switch",
        ops,
        cycles_per_op: cycles?,
        exits,
        extra: &[],
    };
    println!("{line}");
    Ok(())
}

/// Writes to fresh heap pages: each write is a first-touch page fault the kernel satisfies.
fn fault(plan: &Plan, overhead: u64) -> Result<(), Errno> {
    let bracket = Bracket::open();
    let mut samples = [0u64; MAX_ROUNDS];
    let rounds = plan.rounds.min(MAX_ROUNDS);
    for sample in &mut samples[..rounds] {
        let fresh = Fresh::grow(plan.pages)?;
        let start = tsc::now();
        for index in 0..fresh.count() {
            fresh.touch(index);
        }
        *sample = tsc::now().wrapping_sub(start) / plan.pages.max(1);
        fresh.release()?;
    }
    let ops = rounds as u64 * plan.pages;
    report(
        "fault",
        ops,
        median(&mut samples[..rounds]),
        bracket,
        overhead,
    );
    Ok(())
}

/// Spawns `true` and waits for it. One spawn first, unmeasured: the first process of a
/// program has its text granted execute by the hypervisor (a VMCALL per page); later ones
/// share those frames, and that steady state is what is measured.
fn spawn(plan: &Plan, overhead: u64) -> Result<(), Errno> {
    let warm_up = sys::spawn(TINY_PROGRAM, "")?;
    sys::wait(Some(warm_up))?;
    let bracket = Bracket::open();
    let cycles = per_op(plan.rounds, plan.spawns, || {
        for _ in 0..plan.spawns {
            let pid = sys::spawn(TINY_PROGRAM, "")?;
            sys::wait(Some(pid))?;
        }
        Ok(())
    })?;
    let ops = plan.rounds as u64 * plan.spawns;
    report("spawn", ops, cycles, bracket, overhead);
    Ok(())
}

/// Most timer ticks recorded one by one.
const MAX_GAPS: usize = 256;
/// Iterations to find the loop's own cost before watching for gaps.
const WARMUP: u32 = 10_000;
/// A gap is a TSC step this many times the loop's own cost (and at least `MIN_GAP`).
const GAP_FACTOR: u64 = 16;
const MIN_GAP: u64 = 256;

/// A tight TSC loop: every step much longer than the loop's own is an interrupt (the timer;
/// nothing else is ready to run). Reports the median cycles lost per tick, and the loop
/// iterations lost per second and the share of the CPU (parts per million) over the window.
fn tick(plan: &Plan, overhead: u64, cycles_per_ms: u64) {
    let mut step = u64::MAX;
    let mut last = tsc::now();
    for _ in 0..WARMUP {
        let now = tsc::now();
        step = step.min(now.wrapping_sub(last));
        last = now;
    }
    let step = step.max(1);
    let threshold = (step * GAP_FACTOR).max(MIN_GAP);
    let mut gaps = [0u64; MAX_GAPS];
    let (mut seen, mut lost) = (0usize, 0u64);
    let window = plan.tick_ms * cycles_per_ms;
    let bracket = Bracket::open();
    let start = tsc::now();
    let mut last = start;
    while last.wrapping_sub(start) < window {
        let now = tsc::now();
        let delta = now.wrapping_sub(last);
        if delta > threshold {
            lost += delta - step;
            if seen < MAX_GAPS {
                gaps[seen] = delta - step;
            }
            seen += 1;
        }
        last = now;
    }
    let exits = bracket.close(overhead);
    let elapsed = last.wrapping_sub(start).max(1);
    let lost_per_second = lost / step * 1000 / plan.tick_ms.max(1);
    let lost_ppm = (u128::from(lost) * 1_000_000 / u128::from(elapsed)) as u64;
    let extra = [
        ("lost_per_second", lost_per_second),
        ("lost_ppm", lost_ppm),
        ("loop_cycles", step),
        ("tsc_per_ms", cycles_per_ms),
    ];
    let line = Report {
        name: "tick",
        ops: seen as u64,
        cycles_per_op: median(&mut gaps[..seen.min(MAX_GAPS)]),
        exits,
        extra: &extra,
    };
    println!("{line}");
}

/// Milliseconds of uptime used to rate the TSC.
const RATE_MS: u64 = 50;

/// TSC cycles per millisecond of the kernel's uptime (from one uptime step to another).
fn tsc_per_ms() -> u64 {
    let wait_step = || {
        let first = sys::uptime();
        loop {
            let ms = sys::uptime();
            if ms != first {
                return (ms, tsc::now());
            }
        }
    };
    let (from_ms, from_tsc) = wait_step();
    let mut now = (from_ms, from_tsc);
    while now.0 < from_ms + RATE_MS {
        now = wait_step();
    }
    now.1.wrapping_sub(from_tsc) / (now.0 - from_ms).max(1)
}
