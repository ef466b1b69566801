//! The dashboard's SMP part: goals of the SMP rows (`parallel`, `ipi`, `tick-smp`,
//! `shootdown`, printed by the guest's `bench`; see guest-user/src/bin/bench/smp.rs) and the
//! section for the boots with several processors: their rows, throughput scaling, ticks on
//! every CPU and the shootdown on one vCPU against N.

use std::fmt::Write as _;

use super::parse::BenchLine;
use super::table::{number, row_table, rows, Row, Side, Smp};

/// Goal: N processes on N CPUs give at least this share of N times one CPU's throughput.
pub const SCALING_GOAL: f64 = 0.9;

/// VM exits per operation that are the design, not overhead: one ICR write (WRMSR exit) per
/// other CPU per IPI round trip; per shootdown the VMCALL and one NMI exit on each other vCPU;
/// under the default `pagetables = locked` one checked CR3 load per switch between processes
/// (the policy matrix shows `off` at 0), so also a few in one-CPU `parallel`, whose processes
/// share the CPU; a spawn's registration hypercalls and CR3 loads are figures, not goals.
pub fn expected_exits(row: &Row) -> f64 {
    let hv = |key| row.hv_line.as_ref().and_then(|l| l.extra(key));
    match row.name.as_str() {
        "ipi" => hv("others").unwrap_or(1) as f64,
        "shootdown" => hv("vcpus").unwrap_or(1) as f64,
        "switch" => 1.0,
        "parallel" if hv("cpus_used") == Some(1) => 0.01,
        "spawn" => f64::INFINITY,
        _ => 0.0,
    }
}

/// The SMP rows' own goals: `scaling` (parallel, either side below [`SCALING_GOAL`] x the
/// CPUs the processes could use), `idle-exits` (tick-smp: exits during the idle sleep).
pub fn misses(row: &Row) -> Vec<&'static str> {
    let lines = [row.native_line.as_ref(), row.hv_line.as_ref()];
    let mut missed = Vec::new();
    let idle_exits = row.hv_line.as_ref().and_then(|l| l.extra("idle_exits"));
    match row.name.as_str() {
        "parallel" if lines.iter().flatten().any(|l| scaling_missed(l)) => missed.push("scaling"),
        "tick-smp" if idle_exits.is_some_and(|e| e > 0) => missed.push("idle-exits"),
        _ => {}
    }
    missed
}

/// Scaling x1000 and the ideal (min(processes, CPUs)) of a `parallel` line.
fn scaling(line: &BenchLine) -> Option<(f64, u64)> {
    let milli = line.extra("scaling_milli")?;
    let ideal = line.extra("processes")?.min(line.extra("cpus")?).max(1);
    Some((milli as f64 / 1000.0, ideal))
}

fn scaling_missed(line: &BenchLine) -> bool {
    scaling(line).is_some_and(|(s, ideal)| s < SCALING_GOAL * ideal as f64)
}

fn find<'a>(side: &'a Side, name: &str) -> Option<&'a BenchLine> {
    side.results.iter().find(|b| b.name == name)
}

/// The section for the boots with `smp.cpus` processors; `one_hv` is the one-processor hv boot
/// (its `shootdown` row is the one-vCPU figure).
pub fn markdown(md: &mut String, smp: &Smp, one_hv: &Side) {
    let _ = writeln!(md, "\n## {} processors\n", smp.cpus);
    row_table(md, &rows(&smp.native, &smp.hv));
    md.push_str("\n| SMP figure | native | hv |\n|---|---:|---:|\n");
    let both = |label: &str, show: &dyn Fn(&Side) -> String| {
        format!("| {label} | {} | {} |\n", show(&smp.native), show(&smp.hv))
    };
    let extra = |name: &'static str, key: &'static str| {
        move |side: &Side| number(find(side, name).and_then(|l| l.extra(key)))
    };
    let scaled = |side: &Side| {
        find(side, "parallel")
            .and_then(scaling)
            .map_or("-".into(), |(s, ideal)| {
                let goal = SCALING_GOAL * ideal as f64;
                let verdict = if s >= goal { "met" } else { "MISSED" };
                format!("{s:.3} (goal >= {goal:.1}: {verdict})")
            })
    };
    md.push_str(&both(
        "parallel syscalls: throughput scaling, all at once vs one at a time",
        &scaled,
    ));
    md.push_str(&both("parallel: processes / CPUs they ended on", &|side| {
        format!(
            "{} / {}",
            extra("parallel", "processes")(side),
            extra("parallel", "cpus_used")(side)
        )
    }));
    md.push_str(&both(
        "parallel: one at a time, cycles per syscall",
        &extra("parallel", "serial_cycles_per_op"),
    ));
    md.push_str(&both("tick-smp: spinners / CPUs they ran on", &|side| {
        format!(
            "{} / {}",
            extra("tick-smp", "spinners")(side),
            extra("tick-smp", "cpus_used")(side)
        )
    }));
    md.push_str(&both(
        "tick-smp: fewest ticks one spinner saw",
        &extra("tick-smp", "min_ticks_per_spinner"),
    ));
    md.push_str(&both("tick-smp: exits in the spinners' windows", &|side| {
        number(find(side, "tick-smp").and_then(|l| l.exits))
    }));
    md.push_str(&both(
        "tick-smp: exits during idle sleep (every CPU halted between ticks; wake-up subtracted)",
        &extra("tick-smp", "idle_exits"),
    ));
    md.push_str(&both(
        "tick-smp: exits of one sleep's wake-up (IPI to an idle CPU)",
        &extra("tick-smp", "wake_exits"),
    ));
    let shootdown = |side: &Side| {
        find(side, "shootdown").map_or("-".into(), |l| {
            format!(
                "{} cycles, {} exits/op",
                l.cycles_per_op,
                l.exits_per_op.map_or("-".into(), |e| format!("{e:.3}"))
            )
        })
    };
    let _ = writeln!(
        md,
        "| shootdown (ProtectRange, hv only): 1 vCPU vs {} | {} | {} |",
        smp.cpus,
        shootdown(one_hv),
        shootdown(&smp.hv)
    );
}

#[cfg(test)]
mod tests {
    use super::super::parse::bench_lines;
    use super::super::table::rows;
    use super::*;

    fn side(lines: &[&str]) -> Side {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        Side {
            results: bench_lines(&lines),
            ..Side::default()
        }
    }

    fn smp() -> Smp {
        Smp {
            cpus: 2,
            native: side(&[
                "bench: name=parallel ops=40000 cycles_per_op=57 exits=n/a exits_per_op=n/a exit_cycles=n/a processes=2 cpus=2 cpus_used=2 serial_cycles_per_op=112 scaling_milli=1960",
                "bench: name=ipi ops=1100 cycles_per_op=3000 exits=n/a exits_per_op=n/a exit_cycles=n/a others=1",
            ]),
            hv: side(&[
                "bench: name=parallel ops=40000 cycles_per_op=70 exits=0 exits_per_op=0.000 exit_cycles=0 processes=2 cpus=2 cpus_used=2 serial_cycles_per_op=112 scaling_milli=1600",
                "bench: name=ipi ops=1100 cycles_per_op=5000 exits=1100 exits_per_op=1.000 exit_cycles=900 others=1",
                "bench: name=tick-smp ops=60 cycles_per_op=500000 exits=0 exits_per_op=0.000 exit_cycles=0 spinners=2 cpus_used=2 min_ticks_per_spinner=30 idle_ms=300 idle_exits=0",
                "bench: name=shootdown ops=220 cycles_per_op=9000 exits=440 exits_per_op=2.000 exit_cycles=5 vcpus=2",
            ]),
        }
    }

    #[test]
    fn smp_rows_have_their_own_goals() {
        let smp = smp();
        let rows = rows(&smp.native, &smp.hv);
        let goals = |name: &str| rows.iter().find(|r| r.name == name).unwrap().misses();
        assert_eq!(
            goals("parallel"),
            ["ratio", "scaling"],
            "hv: 70 vs 57, scaled 1.6 < 1.8"
        );
        assert!(
            goals("ipi").is_empty(),
            "one ICR exit per IPI is the design"
        );
        assert!(goals("tick-smp").is_empty());
        assert!(goals("shootdown").is_empty());
    }

    #[test]
    fn the_section_shows_scaling_and_the_shootdown_comparison() {
        let one = side(&[
            "bench: name=shootdown ops=220 cycles_per_op=4000 exits=220 exits_per_op=1.000 exit_cycles=5 vcpus=1",
        ]);
        let mut md = String::new();
        markdown(&mut md, &smp(), &one);
        assert!(md.contains("## 2 processors"));
        assert!(
            md.contains("| 1.960 (goal >= 1.8: met) | 1.600 (goal >= 1.8: MISSED) |"),
            "{md}"
        );
        assert!(md.contains(
            "| shootdown (ProtectRange, hv only): 1 vCPU vs 2 | 4000 cycles, 1.000 exits/op | 9000 cycles, 2.000 exits/op |"
        ));
        assert!(md.contains(
            "| tick-smp: exits during idle sleep (every CPU halted between ticks; wake-up subtracted) | - | 0 |"
        ));
    }
}
