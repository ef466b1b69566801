//! The SMP rows of `bench`: `parallel` (N processes each doing the same number of getpid calls,
//! one after another and then all at once: throughput scaling), `ipi` (round trips of the
//! kernel's TLB-shootdown IPI to the other CPUs), `tick-smp` (a spinner per CPU watching timer
//! ticks, and an idle sleep: VM exits while every CPU takes its ticks) and `shootdown`
//! (ProtectRange hypercalls, each shooting down every other vCPU's EPT translations; hv only).
//!
//! Children are this program (`bench par-child|tick-child AMOUNT START INDEX COUNT READ_AFTER`):
//! each waits for the TSC to reach START (after every spawn), measures from START + COUNT x
//! [`READ_SPACING`] on (so all measure together), and reports through its exit code
//! (`rampart_user::bench::ChildReport`). The TSC is the same on every CPU (one clock on Bochs).
//!
//! Each child brackets its work with ExitCount, but never at the same moment as another: the
//! hypervisor's total (all exits less the counter queries, two atomics read one after the
//! other) can be one too high while another vCPU is inside its own query, so child INDEX reads
//! at INDEX x [`READ_SPACING`] after START and after START + READ_AFTER, and every child exits
//! only once all have read (no exit, wake-up or spawn falls inside any window).

use core::fmt::Write as _;

use rampart_kernel_abi::syscall::bench as op;
use rampart_user::args::{count_or, words};
use rampart_user::bench::{median, Bracket, ChildReport, Counters, Report};
use rampart_user::fmt::FixedBuf;
use rampart_user::{println, sys, tsc, Errno};

/// How much of each SMP benchmark to run.
pub struct SmpPlan {
    pub rounds: usize,
    /// getpid calls per child.
    pub par_syscalls: u64,
    /// IPI round trips per system call (and per round).
    pub ipis: u64,
    /// ProtectRange hypercalls per round.
    pub shootdowns: u64,
    /// Milliseconds each spinner watches for ticks, and the idle sleep.
    pub tick_ms: u64,
}

pub const FULL: SmpPlan = SmpPlan {
    rounds: 11,
    par_syscalls: 20_000,
    ipis: 100,
    shootdowns: 20,
    tick_ms: 300,
};

pub const QUICK: SmpPlan = SmpPlan {
    rounds: 5,
    par_syscalls: 5_000,
    ipis: 20,
    shootdowns: 5,
    tick_ms: 100,
};

/// Children start this many TSC cycles per child after the parent read the clock: several
/// times a spawn's cost (~0.43M cycles on Bochs), so every child is ready before the start.
const START_MARGIN_PER_CHILD: u64 = 2_000_000;
/// TSC cycles between two children's exit-counter reads (a query takes a few thousand).
const READ_SPACING: u64 = 200_000;
/// Generous TSC cycles per getpid for a child's `read_after` (one takes ~120 on Bochs).
const SYSCALL_BUDGET: u64 = 400;
/// Beyond the tick window: the tick counter's warm-up loop.
const TICK_SLACK: u64 = 1_000_000;
/// Most children at once.
const MAX_CHILDREN: usize = 16;

/// (online CPUs, the caller's CPU); one CPU on a kernel without the Bench call.
pub fn cpus() -> (u64, u64) {
    match sys::bench(op::CPUS, 0) {
        Ok(value) => (value >> 32, value & 0xffff_ffff),
        Err(_) => (1, 0),
    }
}

/// Runs every SMP row; the first error ends them.
pub fn run(plan: &SmpPlan, overhead: u64, tsc_per_ms: u64) -> Result<(), Errno> {
    let (online, _) = cpus();
    println!("bench: smp cpus={online}");
    parallel(plan, online)?;
    if online > 1 {
        ipi(plan, overhead)?;
    }
    tick(plan, online, tsc_per_ms, overhead)?;
    shootdown(plan, online, overhead)
}

/// A child's main: `kind` is `par-child` or `tick-child`.
pub fn child(kind: &str, rest: &str) -> i64 {
    let mut args = words(rest);
    let mut next = || count_or(args.next(), 0);
    let (amount, start, index, count, read_after) = (next(), next(), next(), next(), next());
    let work_start = start + count * READ_SPACING;
    let read_at = |base: u64, slot: u64| {
        let at = base + slot * READ_SPACING;
        while tsc::now() < at {
            core::hint::spin_loop();
        }
        sys::exit_count().ok()
    };
    let before = read_at(start, index);
    read_at(work_start, 0);
    let value = if kind == "par-child" {
        for _ in 0..amount {
            core::hint::black_box(sys::getpid());
        }
        tsc::now().wrapping_sub(work_start)
    } else {
        count_ticks(amount)
    };
    let after = read_at(work_start + read_after, index);
    let report = ChildReport {
        value,
        cpu: cpus().1,
        exits: before.zip(after).map(|(b, a)| a.wrapping_sub(b)),
    };
    // Everyone has read before anyone exits.
    read_at(work_start + read_after, count);
    report.encode()
}

/// Spawns `count` children `bench KIND AMOUNT START INDEX COUNT READ_AFTER` with one common
/// start and collects their reports. `read_after`: TSC cycles from the common start of work to
/// the exit-counter reads (more than the work takes; a child that overruns reads at once).
fn run_children(
    count: usize,
    kind: &str,
    amount: u64,
    read_after: u64,
    reports: &mut [ChildReport; MAX_CHILDREN],
) -> Result<(), Errno> {
    let mut pids = [0u64; MAX_CHILDREN];
    let start = tsc::now() + START_MARGIN_PER_CHILD * count as u64;
    for (index, pid) in pids[..count].iter_mut().enumerate() {
        let mut args = FixedBuf::<128>::new();
        let _ = write!(args, "{kind} {amount} {start} {index} {count} {read_after}");
        let text = core::str::from_utf8(args.as_bytes()).map_err(|_| Errno::Invalid)?;
        *pid = sys::spawn("bench", text)?;
    }
    if tsc::now() > start {
        println!("bench: warning: {kind} children spawned after their start time");
    }
    for (pid, report) in pids[..count].iter().zip(reports.iter_mut()) {
        let (_, code) = sys::wait(Some(*pid))?;
        *report = ChildReport::decode(code).ok_or(Errno::Invalid)?;
    }
    Ok(())
}

const EMPTY: ChildReport = ChildReport {
    value: 0,
    cpu: 0,
    exits: None,
};

/// The largest exit count of the children's windows (they overlap, so this is not a sum).
fn worst_exits(reports: &[ChildReport]) -> Option<Counters> {
    reports.iter().try_fold(
        Counters {
            exits: 0,
            cycles: 0,
        },
        |worst, r| {
            Some(Counters {
                exits: worst.exits.max(r.exits?),
                cycles: 0,
            })
        },
    )
}

/// Distinct CPUs the children ended on.
fn cpus_used(reports: &[ChildReport]) -> u64 {
    let mask = reports.iter().fold(0u64, |m, r| m | 1 << r.cpu.min(63));
    u64::from(mask.count_ones())
}

/// `max(online, 2)` processes, each `par_syscalls` getpids: first one at a time (what one CPU
/// gives), then all at once. cycles_per_op is the parallel wall time per syscall of the total;
/// `scaling_milli` = 1000 x serial / parallel time.
fn parallel(plan: &SmpPlan, online: u64) -> Result<(), Errno> {
    let count = (online.max(2) as usize).min(MAX_CHILDREN);
    let mut reports = [EMPTY; MAX_CHILDREN];
    let mut serial = 0u64;
    let budget = plan.par_syscalls * SYSCALL_BUDGET;
    for _ in 0..count {
        run_children(1, "par-child", plan.par_syscalls, budget, &mut reports)?;
        serial += reports[0].value;
    }
    run_children(count, "par-child", plan.par_syscalls, budget, &mut reports)?;
    let reports = &reports[..count];
    let wall = reports.iter().map(|r| r.value).max().unwrap_or(0).max(1);
    let ops = count as u64 * plan.par_syscalls;
    let extra = [
        ("processes", count as u64),
        ("cpus", online),
        ("cpus_used", cpus_used(reports)),
        ("serial_cycles_per_op", serial / ops.max(1)),
        ("scaling_milli", serial * 1000 / wall),
    ];
    let line = Report {
        name: "parallel",
        ops,
        cycles_per_op: wall / ops.max(1),
        exits: worst_exits(reports),
        extra: &extra,
    };
    println!("{line}");
    Ok(())
}

/// Round trips of the shootdown IPI: this CPU writes the ICR once per other CPU, each answers
/// from its interrupt handler; cycles per round trip.
fn ipi(plan: &SmpPlan, overhead: u64) -> Result<(), Errno> {
    let mut samples = [0u64; 11];
    let rounds = plan.rounds.min(samples.len());
    let mut others = 0;
    let bracket = Bracket::open();
    for sample in &mut samples[..rounds] {
        let start = tsc::now();
        others = sys::bench(op::IPI, plan.ipis)?;
        *sample = tsc::now().wrapping_sub(start) / plan.ipis.max(1);
    }
    let exits = bracket.close(overhead);
    let extra = [("others", others)];
    let line = Report {
        name: "ipi",
        ops: rounds as u64 * plan.ipis,
        cycles_per_op: median(&mut samples[..rounds]),
        exits,
        extra: &extra,
    };
    println!("{line}");
    Ok(())
}

/// The short sleep whose exits (its wake-up) are subtracted from a longer one's.
const SHORT_SLEEP_MS: u64 = 20;

/// A spinner per CPU watching `tick_ms` of timer ticks (exits in each window), then the exits
/// of `tick_ms` more of idle sleep (every CPU halted between ticks; wake-ups subtracted).
fn tick(plan: &SmpPlan, online: u64, tsc_per_ms: u64, overhead: u64) -> Result<(), Errno> {
    let count = (online as usize).clamp(1, MAX_CHILDREN);
    let window = plan.tick_ms * tsc_per_ms;
    let mut reports = [EMPTY; MAX_CHILDREN];
    run_children(
        count,
        "tick-child",
        window,
        window + TICK_SLACK,
        &mut reports,
    )?;
    let reports = &reports[..count];
    let ticks: u64 = reports.iter().map(|r| r.value).sum();
    // Each sleep ends with one wake-up (an IPI to an idle CPU, an ICR exit under Rampart):
    // the difference between a long and a short sleep is what the extra idle ticks cost.
    let sleep_exits = |ms| {
        let bracket = Bracket::open();
        sys::sleep(ms);
        bracket.close(overhead).map(|c| c.exits)
    };
    let short = sleep_exits(SHORT_SLEEP_MS);
    let long = sleep_exits(plan.tick_ms + SHORT_SLEEP_MS);
    let idle_exits = short.zip(long).map(|(s, l)| l.saturating_sub(s));
    let mut extra = [
        ("spinners", count as u64),
        ("cpus_used", cpus_used(reports)),
        (
            "min_ticks_per_spinner",
            reports.iter().map(|r| r.value).min().unwrap_or(0),
        ),
        ("idle_ms", plan.tick_ms),
        ("idle_exits", 0),
        ("wake_exits", 0),
    ];
    let shown = match (idle_exits, short) {
        (Some(exits), Some(wake)) => {
            extra[4].1 = exits;
            extra[5].1 = wake;
            extra.len()
        }
        _ => extra.len() - 2,
    };
    let line = Report {
        name: "tick-smp",
        ops: ticks,
        cycles_per_op: (window * count as u64) / ticks.max(1),
        exits: worst_exits(reports),
        extra: &extra[..shown],
    };
    println!("{line}");
    Ok(())
}

/// Loop iterations to find the loop's own cost; a gap this many times it is an interrupt.
const WARMUP: u32 = 10_000;
const GAP_FACTOR: u64 = 16;
const MIN_GAP: u64 = 256;

/// Timer ticks (TSC gaps) seen in `window` cycles of a tight loop.
fn count_ticks(window: u64) -> u64 {
    let mut step = u64::MAX;
    let mut last = tsc::now();
    for _ in 0..WARMUP {
        let now = tsc::now();
        step = step.min(now.wrapping_sub(last));
        last = now;
    }
    let threshold = (step.max(1) * GAP_FACTOR).max(MIN_GAP);
    let start = tsc::now();
    let (mut last, mut seen) = (start, 0);
    while last.wrapping_sub(start) < window {
        let now = tsc::now();
        if now.wrapping_sub(last) > threshold {
            seen += 1;
        }
        last = now;
    }
    seen
}

/// ProtectRange hypercalls on one scratch frame (rights unchanged); each shoots down every other
/// running vCPU. Nothing natively (no hypervisor).
fn shootdown(plan: &SmpPlan, online: u64, overhead: u64) -> Result<(), Errno> {
    let mut samples = [0u64; 11];
    let rounds = plan.rounds.min(samples.len());
    // The first call allocates the frame and may split a large EPT page: not measured.
    match sys::bench(op::SHOOTDOWN, 1) {
        Err(Errno::NoSys) => return Ok(()),
        other => other?,
    };
    let bracket = Bracket::open();
    for sample in &mut samples[..rounds] {
        let start = tsc::now();
        sys::bench(op::SHOOTDOWN, plan.shootdowns)?;
        *sample = tsc::now().wrapping_sub(start) / plan.shootdowns.max(1);
    }
    let exits = bracket.close(overhead);
    let extra = [("vcpus", online)];
    let line = Report {
        name: "shootdown",
        ops: rounds as u64 * plan.shootdowns,
        cycles_per_op: median(&mut samples[..rounds]),
        exits,
        extra: &extra,
    };
    println!("{line}");
    Ok(())
}
