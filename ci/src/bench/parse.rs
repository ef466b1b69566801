//! Parsing what the guest prints: the `bench: name=...` result lines (guest-user's
//! `rampart_user::bench`) and the boot-cost and EPT lines of the kernel and the hypervisor.

/// One `bench: name=N ops=O cycles_per_op=C exits=E exits_per_op=P exit_cycles=X ...` line.
/// The exit fields are `None` where the guest printed `n/a` (no hypervisor).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchLine {
    pub name: String,
    pub ops: u64,
    pub cycles_per_op: u64,
    pub exits: Option<u64>,
    pub exits_per_op: Option<f64>,
    pub exit_cycles: Option<u64>,
    /// Any further `key=value` fields with integer values (the tick benchmark's).
    pub extra: Vec<(String, u64)>,
}

const BENCH_PREFIX: &str = "bench: name=";
/// The guest's last line.
pub const DONE: &str = "bench: done";

impl BenchLine {
    /// Parses a serial line holding a result line (anywhere in it: echo may precede it).
    pub fn parse(line: &str) -> Option<BenchLine> {
        let at = line.find(BENCH_PREFIX)?;
        let fields = &line[at + "bench: ".len()..];
        let mut parsed = BenchLine {
            name: String::new(),
            ops: 0,
            cycles_per_op: 0,
            exits: None,
            exits_per_op: None,
            exit_cycles: None,
            extra: Vec::new(),
        };
        let (mut has_ops, mut has_cycles) = (false, false);
        for word in fields.split_whitespace() {
            let (key, value) = word.split_once('=')?;
            match key {
                "name" => parsed.name = value.to_string(),
                "ops" => (parsed.ops, has_ops) = (value.parse().ok()?, true),
                "cycles_per_op" => (parsed.cycles_per_op, has_cycles) = (value.parse().ok()?, true),
                "exits" => parsed.exits = optional(value)?,
                "exits_per_op" => parsed.exits_per_op = optional(value)?,
                "exit_cycles" => parsed.exit_cycles = optional(value)?,
                _ => parsed.extra.push((key.to_string(), value.parse().ok()?)),
            }
        }
        (!parsed.name.is_empty() && has_ops && has_cycles).then_some(parsed)
    }

    /// An extra field's value.
    pub fn extra(&self, key: &str) -> Option<u64> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// `n/a` is `Some(None)`, a number `Some(Some(n))`, anything else `None` (malformed).
fn optional<T: std::str::FromStr>(value: &str) -> Option<Option<T>> {
    match value {
        "n/a" => Some(None),
        other => other.parse().ok().map(Some),
    }
}

/// Every result line in `lines`, in order.
pub fn bench_lines(lines: &[String]) -> Vec<BenchLine> {
    lines.iter().filter_map(|l| BenchLine::parse(l)).collect()
}

/// Boot figures from the serial log; each `None` when its line is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootFigures {
    /// `[kernel] tsc at entry: N`: TSC when the kernel starts (from reset).
    pub kernel_entry_tsc: Option<u64>,
    /// `[hv] hand-off to VMLAUNCH: N TSC cycles, M without serial logging (L)`.
    pub handoff_to_vmlaunch: Option<u64>,
    /// The `M` above: the set-up work without the time the UART took for the boot log.
    pub handoff_without_logging: Option<u64>,
    /// `[hv] EPT: ... in N tables (K KiB)`: tables and KiB at launch.
    pub ept_tables: Option<u64>,
    pub ept_kib: Option<u64>,
}

impl BootFigures {
    pub fn parse(lines: &[String]) -> BootFigures {
        let mut figures = BootFigures::default();
        for line in lines {
            if let Some(rest) = after(line, "[kernel] tsc at entry: ") {
                figures.kernel_entry_tsc = leading_number(rest);
            } else if let Some(rest) = after(line, "[hv] hand-off to VMLAUNCH: ") {
                figures.handoff_to_vmlaunch = leading_number(rest);
                figures.handoff_without_logging = after(rest, "cycles, ").and_then(leading_number);
            } else if let Some(rest) = after(line, "[hv] EPT: ") {
                if let Some(tables) = after(rest, " in ") {
                    figures.ept_tables = leading_number(tables);
                }
                if let Some(kib) = after(rest, " tables (") {
                    figures.ept_kib = leading_number(kib);
                }
            }
        }
        figures
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

fn leading_number(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn parses_hypervisor_and_native_lines() {
        let hv = BenchLine::parse(
            "bench: name=syscall ops=22000 cycles_per_op=363 exits=0 exits_per_op=0.000 exit_cycles=0",
        )
        .unwrap();
        assert_eq!(hv.name, "syscall");
        assert_eq!((hv.ops, hv.cycles_per_op), (22000, 363));
        assert_eq!((hv.exits, hv.exits_per_op), (Some(0), Some(0.0)));
        let native = BenchLine::parse(
            "sh> bench: name=tick ops=5 cycles_per_op=7410 exits=n/a exits_per_op=n/a exit_cycles=n/a lost_per_second=14 lost_ppm=3",
        )
        .unwrap();
        assert_eq!(native.exits, None);
        assert_eq!(native.extra("lost_ppm"), Some(3));
        assert_eq!(native.extra("nope"), None);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert_eq!(BenchLine::parse("bench: done"), None);
        assert_eq!(BenchLine::parse("bench: name=x ops=1"), None, "no cycles");
        assert_eq!(
            BenchLine::parse("bench: name=x ops=1 cycles_per_op=2 exits=lots"),
            None
        );
        assert_eq!(BenchLine::parse("bench: start rounds=11"), None);
    }

    #[test]
    fn collects_results_in_order() {
        let log = lines(&[
            "bench: start rounds=5 bracket_cycles=0",
            "bench: name=syscall ops=1 cycles_per_op=2 exits=n/a exits_per_op=n/a exit_cycles=n/a",
            "[kernel] pid 4 (bench) exited with code -9",
            "bench: name=switch ops=1 cycles_per_op=3 exits=n/a exits_per_op=n/a exit_cycles=n/a",
            DONE,
        ]);
        let names: Vec<String> = bench_lines(&log).into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["syscall", "switch"]);
    }

    #[test]
    fn parses_boot_figures() {
        let log = lines(&[
            "[kernel] tsc at entry: 912345678",
            "[hv] EPT: identity map of 4 GiB in 6 tables (24 KiB), 2M pages on, 1G pages on",
            "[hv] hand-off to VMLAUNCH: 2241754 TSC cycles, 41754 without serial logging (2200000)",
        ]);
        let figures = BootFigures::parse(&log);
        assert_eq!(figures.kernel_entry_tsc, Some(912345678));
        assert_eq!(figures.handoff_to_vmlaunch, Some(2241754));
        assert_eq!(figures.handoff_without_logging, Some(41754));
        assert_eq!((figures.ept_tables, figures.ept_kib), (Some(6), Some(24)));
        assert_eq!(BootFigures::parse(&[]), BootFigures::default());
    }
}
