//! The deterministic part of the dashboard, checked by boot tests: under Rampart the system
//! call, first-touch fault, timer tick, process switch and spawn (of a program whose text is
//! already granted) benchmarks cause no VM exit at all, with `kpti` off or on (the guest owns
//! its interrupts, #PF does not exit, and with per-CPU roots a switch loads no other root: its
//! flush is INVPCID or a CR3-target value), and on several vCPUs neither system calls running
//! on all of them at once nor timer ticks on any (spinning or idle) exit. Timings are not
//! asserted.

use super::parse::{bench_lines, DONE};

/// The benchmarks that must show `exits=0`.
pub const ZERO_EXIT: [&str; 5] = ["syscall", "fault", "tick", "switch", "spawn"];

/// The SMP benchmarks that must show `exits=0` (and `idle_exits=0` for `tick-smp`).
pub const ZERO_EXIT_SMP: [&str; 2] = ["parallel", "tick-smp"];

/// Checks the `bench` output in `lines`; returns failures and figures
/// (`bench.<name>.cycles`, `bench.<name>.exits` for every benchmark).
pub fn zero_exits(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    check(lines, &ZERO_EXIT)
}

/// [`zero_exits`] for `bench smp` on several vCPUs: [`ZERO_EXIT_SMP`], the idle ticks, and
/// every child process on a CPU of its own.
pub fn zero_exits_smp(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    let (mut failures, mut figures) = check(lines, &ZERO_EXIT_SMP);
    let results = bench_lines(lines);
    if let Some(tick) = results.iter().find(|r| r.name == "tick-smp") {
        match tick.extra("idle_exits") {
            Some(0) => {}
            other => failures.push(format!(
                "bench: tick-smp: want idle_exits=0, got {}",
                other.map_or("none".into(), |e| e.to_string())
            )),
        }
    }
    for result in &results {
        for (key, value) in &result.extra {
            figures.push((format!("bench.{}.{key}", result.name), *value));
        }
        let (used, wanted) = match result.name.as_str() {
            "parallel" => (result.extra("cpus_used"), result.extra("processes")),
            "tick-smp" => (result.extra("cpus_used"), result.extra("spinners")),
            _ => continue,
        };
        if used.is_none() || used != wanted {
            failures.push(format!(
                "bench: {}: want a CPU per process ({wanted:?}), got cpus_used={used:?}",
                result.name
            ));
        }
    }
    (failures, figures)
}

fn check(lines: &[String], zero_exit: &[&str]) -> (Vec<String>, Vec<(String, u64)>) {
    let mut failures = Vec::new();
    let results = bench_lines(lines);
    let mut figures = Vec::new();
    for result in &results {
        figures.push((
            format!("bench.{}.cycles", result.name),
            result.cycles_per_op,
        ));
        if let Some(exits) = result.exits {
            figures.push((format!("bench.{}.exits", result.name), exits));
        }
    }
    for &name in zero_exit {
        match results.iter().find(|r| r.name == name) {
            None => failures.push(format!("bench: no `bench: name={name} ...` line")),
            Some(r) if r.exits == Some(0) => {}
            Some(r) => failures.push(format!(
                "bench: {name}: want exits=0, got exits={} over {} ops",
                r.exits.map_or("n/a".into(), |e| e.to_string()),
                r.ops
            )),
        }
    }
    if !lines.iter().any(|l| l.contains(DONE)) {
        failures.push(format!("bench: no `{DONE}` line"));
    }
    if !lines
        .iter()
        .any(|l| l.contains("[sh] bench exited with code 0"))
    {
        failures.push("bench: want `[sh] bench exited with code 0`".into());
    }
    (failures, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|l| l.to_string()).collect()
    }

    const GOOD: &[&str] = &[
        "bench: name=syscall ops=10 cycles_per_op=100 exits=0 exits_per_op=0.000 exit_cycles=0",
        "bench: name=switch ops=10 cycles_per_op=900 exits=0 exits_per_op=0.000 exit_cycles=0",
        "bench: name=fault ops=10 cycles_per_op=800 exits=0 exits_per_op=0.000 exit_cycles=0",
        "bench: name=spawn ops=1 cycles_per_op=9000 exits=0 exits_per_op=0.000 exit_cycles=0",
        "bench: name=tick ops=10 cycles_per_op=380 exits=0 exits_per_op=0.000 exit_cycles=0",
        "bench: done",
        "[sh] bench exited with code 0",
    ];

    #[test]
    fn zero_exits_pass_with_figures() {
        let (failures, figures) = zero_exits(&lines(GOOD));
        assert!(failures.is_empty(), "{failures:?}");
        assert!(figures.contains(&("bench.spawn.exits".into(), 0)));
        assert!(figures.contains(&("bench.fault.cycles".into(), 800)));
    }

    #[test]
    fn smp_rows_need_zero_exits_and_a_cpu_each() {
        let good = [
            "bench: name=parallel ops=10 cycles_per_op=60 exits=0 exits_per_op=0.000 exit_cycles=0 processes=2 cpus=2 cpus_used=2 serial_cycles_per_op=120 scaling_milli=2000",
            "bench: name=ipi ops=10 cycles_per_op=700 exits=10 exits_per_op=1.000 exit_cycles=9 others=1",
            "bench: name=tick-smp ops=20 cycles_per_op=500000 exits=0 exits_per_op=0.000 exit_cycles=0 spinners=2 cpus_used=2 min_ticks_per_spinner=10 idle_ms=100 idle_exits=0 wake_exits=1",
            "bench: done",
            "[sh] bench exited with code 0",
        ];
        let (failures, figures) = zero_exits_smp(&lines(&good));
        assert!(failures.is_empty(), "{failures:?}");
        assert!(figures.contains(&("bench.parallel.scaling_milli".into(), 2000)));
        let mut bad = lines(&good);
        bad[2] = bad[2]
            .replace("idle_exits=0", "idle_exits=3")
            .replace("cpus_used=2", "cpus_used=1");
        let (failures, _) = zero_exits_smp(&bad);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].contains("idle_exits=0, got 3"));
        assert!(failures[1].contains("tick-smp: want a CPU per process"));
    }

    #[test]
    fn an_exit_or_a_missing_line_fails() {
        let mut log = lines(GOOD);
        log[0] = log[0].replace("exits=0 ", "exits=3 ");
        log.remove(2);
        let (failures, _) = zero_exits(&log);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].contains("syscall: want exits=0, got exits=3"));
        assert!(failures[1].contains("name=fault"));
        // Per-CPU roots: a switch or a spawn of a granted program exits no more, KPTI or not.
        for (row, name) in [(1, "switch"), (3, "spawn")] {
            let mut log = lines(GOOD);
            log[row] = log[row].replace("exits=0 ", "exits=1 ");
            let (failures, _) = zero_exits(&log);
            assert!(failures[0].contains(&format!("{name}: want exits=0, got exits=1")));
        }
        let native = lines(&[GOOD[0].replace("exits=0", "exits=n/a").as_str()]);
        let (failures, _) = zero_exits(&native);
        assert!(failures[0].contains("got exits=n/a"));
    }
}
