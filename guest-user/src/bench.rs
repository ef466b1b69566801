//! Benchmark plumbing for `bench`: medians, the hypervisor's exit counters read around a
//! measurement, and the machine-readable result line the runner parses (plus [`ExitDelta`], the
//! line of `sysloop` and `pingpong`):
//!
//! `bench: name=syscall ops=22000 cycles_per_op=123 exits=0 exits_per_op=0.000 exit_cycles=0`
//!
//! (`exits=n/a exits_per_op=n/a exit_cycles=n/a` without the hypervisor; optional extra
//! `key=value` fields follow).

use core::fmt;

use crate::{sys, Errno};

/// The median of `values` (sorted in place); 0 for none.
pub fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The hypervisor's counters at one moment: VM exits and TSC cycles spent handling them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub exits: u64,
    pub cycles: u64,
}

/// VM exits during a measurement, or `None` without the hypervisor.
pub type Exits = Option<Counters>;

/// Counter reads around a measurement. The ExitCount queries do not count themselves, but the
/// handler cycles of the bracket's own queries do: [`Bracket::close`] subtracts an empty
/// bracket's cycles, measured once by [`Bracket::calibrate`].
pub struct Bracket {
    start: Exits,
}

impl Bracket {
    /// Reads the cycles first and the count second (and the reverse in `close`), so that the
    /// ExitCycles queries stay outside the counted window.
    pub fn open() -> Bracket {
        Bracket { start: read() }
    }

    /// The exits since `open`, less `overhead` (an empty bracket's handler cycles).
    pub fn close(self, overhead: u64) -> Exits {
        let end = read_reversed();
        match (self.start, end) {
            (Some(start), Some(end)) => Some(Counters {
                exits: end.exits.wrapping_sub(start.exits),
                cycles: end
                    .cycles
                    .wrapping_sub(start.cycles)
                    .saturating_sub(overhead),
            }),
            _ => None,
        }
    }

    /// The handler cycles of an empty bracket (0 without the hypervisor).
    pub fn calibrate() -> u64 {
        let mut samples = [0u64; 5];
        for sample in &mut samples {
            *sample = Bracket::open().close(0).map_or(0, |c| c.cycles);
        }
        median(&mut samples)
    }
}

fn read() -> Exits {
    let cycles = counter(sys::exit_cycles())?;
    let exits = counter(sys::exit_count())?;
    Some(Counters { exits, cycles })
}

fn read_reversed() -> Exits {
    let exits = counter(sys::exit_count())?;
    let cycles = counter(sys::exit_cycles())?;
    Some(Counters { exits, cycles })
}

fn counter(value: Result<u64, Errno>) -> Option<u64> {
    value.ok()
}

/// One result line.
pub struct Report<'a> {
    pub name: &'a str,
    pub ops: u64,
    pub cycles_per_op: u64,
    pub exits: Exits,
    /// Extra `key=value` fields.
    pub extra: &'a [(&'a str, u64)],
}

/// `per / ops` with three decimals, without floating point.
struct PerOp {
    per: u64,
    ops: u64,
}

impl fmt::Display for PerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops = u128::from(self.ops.max(1));
        let milli = (u128::from(self.per) * 1000 + ops / 2) / ops;
        write!(f, "{}.{:03}", milli / 1000, milli % 1000)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bench: name={} ops={} cycles_per_op={}",
            self.name, self.ops, self.cycles_per_op
        )?;
        match self.exits {
            Some(c) => {
                let per_op = PerOp {
                    per: c.exits,
                    ops: self.ops,
                };
                write!(
                    f,
                    " exits={} exits_per_op={per_op} exit_cycles={}",
                    c.exits, c.cycles
                )?;
            }
            None => f.write_str(" exits=n/a exits_per_op=n/a exit_cycles=n/a")?,
        }
        for (key, value) in self.extra {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

/// The result line of a program that brackets `count` `unit` (e.g. "syscalls") with two
/// ExitCount reads: `before` and `after`.
pub struct ExitDelta<'a> {
    pub program: &'a str,
    pub count: u64,
    pub unit: &'a str,
    pub before: Result<u64, Errno>,
    pub after: Result<u64, Errno>,
}

impl ExitDelta<'_> {
    /// The program's exit code: 1 if a read failed other than for want of a hypervisor.
    pub fn exit_code(&self) -> i64 {
        match (self.before, self.after) {
            (Ok(_), Ok(_)) | (Err(Errno::NoSys), _) => 0,
            _ => 1,
        }
    }
}

impl fmt::Display for ExitDelta<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            program,
            count,
            unit,
            ..
        } = self;
        match (self.before, self.after) {
            (Ok(before), Ok(after)) => {
                let delta = after.wrapping_sub(before) as i64;
                write!(
                    f,
                    "{program}: {count} {unit}, exits before={before} after={after} delta={delta}"
                )
            }
            (Err(Errno::NoSys), _) => {
                write!(f, "{program}: {count} {unit}, exits n/a (no hypervisor)")
            }
            (Err(err), _) | (_, Err(err)) => {
                write!(f, "{program}: exit_count failed: {}", err.name())
            }
        }
    }
}

/// What a benchmark child process reports through its exit code (non-negative): bits 0-39 a
/// value (cycles or ticks), 40-47 the CPU it ended on, 48-62 the VM exits in its window
/// ([`ChildReport::NO_EXITS`] without the hypervisor, saturated above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildReport {
    pub value: u64,
    pub cpu: u64,
    pub exits: Option<u64>,
}

impl ChildReport {
    const VALUE_BITS: u32 = 40;
    const CPU_SHIFT: u32 = 40;
    const CPU_MASK: u64 = 0xff;
    const EXITS_SHIFT: u32 = 48;
    /// The exits field meaning "no hypervisor"; larger counts saturate one below it.
    const NO_EXITS: u64 = 0x7fff;

    pub fn encode(&self) -> i64 {
        let value = self.value.min((1 << Self::VALUE_BITS) - 1);
        let cpu = self.cpu.min(Self::CPU_MASK);
        let exits = self
            .exits
            .map_or(Self::NO_EXITS, |e| e.min(Self::NO_EXITS - 1));
        (value | cpu << Self::CPU_SHIFT | exits << Self::EXITS_SHIFT) as i64
    }

    /// `None` for a negative code (the child failed or was killed).
    pub fn decode(code: i64) -> Option<ChildReport> {
        let raw = u64::try_from(code).ok()?;
        let exits = raw >> Self::EXITS_SHIFT;
        Some(ChildReport {
            value: raw & ((1 << Self::VALUE_BITS) - 1),
            cpu: raw >> Self::CPU_SHIFT & Self::CPU_MASK,
            exits: (exits != Self::NO_EXITS).then_some(exits),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_reports_round_trip() {
        for report in [
            ChildReport {
                value: 123_456_789,
                cpu: 3,
                exits: Some(0),
            },
            ChildReport {
                value: 0,
                cpu: 0,
                exits: None,
            },
            ChildReport {
                value: 1,
                cpu: 15,
                exits: Some(42),
            },
        ] {
            let code = report.encode();
            assert!(code >= 0);
            assert_eq!(ChildReport::decode(code), Some(report));
        }
        let many = ChildReport {
            value: 1,
            cpu: 0,
            exits: Some(1 << 20),
        }
        .encode();
        assert_eq!(ChildReport::decode(many).unwrap().exits, Some(0x7ffe));
        assert_eq!(ChildReport::decode(-9), None);
    }

    #[test]
    fn median_of_odd_and_empty() {
        assert_eq!(median(&mut [5, 1, 9, 3, 7]), 5);
        assert_eq!(median(&mut [4, 2]), 4);
        assert_eq!(median(&mut []), 0);
    }

    #[test]
    fn exit_delta_lines() {
        let line = |before, after| {
            let delta = ExitDelta {
                program: "sysloop",
                count: 5,
                unit: "syscalls",
                before,
                after,
            };
            (delta.to_string(), delta.exit_code())
        };
        assert_eq!(
            line(Ok(7), Ok(7)),
            (
                "sysloop: 5 syscalls, exits before=7 after=7 delta=0".into(),
                0
            )
        );
        assert_eq!(
            line(Err(Errno::NoSys), Err(Errno::NoSys)),
            ("sysloop: 5 syscalls, exits n/a (no hypervisor)".into(), 0)
        );
        let failed = line(Ok(7), Err(Errno::NoSys));
        assert_eq!(failed.1, 1);
        assert!(failed.0.starts_with("sysloop: exit_count failed: "));
    }

    #[test]
    fn lines_are_machine_readable() {
        let counted = Report {
            name: "syscall",
            ops: 3,
            cycles_per_op: 120,
            exits: Some(Counters {
                exits: 2,
                cycles: 900,
            }),
            extra: &[],
        };
        assert_eq!(
            counted.to_string(),
            "bench: name=syscall ops=3 cycles_per_op=120 exits=2 exits_per_op=0.667 exit_cycles=900"
        );
        let native = Report {
            name: "tick",
            ops: 0,
            cycles_per_op: 0,
            exits: None,
            extra: &[("lost_per_second", 42)],
        };
        assert_eq!(
            native.to_string(),
            "bench: name=tick ops=0 cycles_per_op=0 exits=n/a exits_per_op=n/a exit_cycles=n/a lost_per_second=42"
        );
    }
}
