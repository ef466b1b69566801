//! The page-table policy matrix (issue 12): what `pagetables = locked` (locked per-CPU roots,
//! checked CR3 loads) and the guest's `kpti=on` cost on system calls, process
//! switches and spawns, natively and under Rampart; each configuration is a boot of its own
//! on the same Bochs model, so every figure in a column comes from one emulator.

use std::fmt::Write as _;

use super::parse::BenchLine;
use super::table::Side;
use crate::image::Mode;

/// One configuration of the matrix besides the dashboard's own native and hv boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub label: &'static str,
    pub mode: Mode,
    /// `pagetables = off` in boot.cfg (hv only; `locked` is the default).
    pub pagetables_off: bool,
    /// `cmdline = kpti=on`.
    pub kpti: bool,
}

impl Config {
    /// Lines appended to the boot config.
    pub fn boot_cfg(&self) -> String {
        let mut cfg = String::new();
        if self.pagetables_off {
            cfg.push_str("pagetables = off\n");
        }
        if self.kpti {
            cfg.push_str("cmdline = kpti=on\n");
        }
        cfg
    }

    /// Suffix of the run directory.
    pub fn suffix(&self) -> String {
        let mut s = String::new();
        if self.pagetables_off {
            s.push_str("-pt-off");
        }
        if self.kpti {
            s.push_str("-kpti");
        }
        s
    }
}

/// The dashboard's native boot is `native, kpti=off`; its hv boot `pagetables = locked,
/// kpti=off`. These are the other four.
pub const EXTRA: [Config; 4] = [
    Config {
        label: "hv, pagetables = off, kpti=off",
        mode: Mode::Hv,
        pagetables_off: true,
        kpti: false,
    },
    Config {
        label: "native, kpti=on",
        mode: Mode::Native,
        pagetables_off: false,
        kpti: true,
    },
    Config {
        label: "hv, pagetables = locked, kpti=on",
        mode: Mode::Hv,
        pagetables_off: false,
        kpti: true,
    },
    Config {
        label: "hv, pagetables = off, kpti=on",
        mode: Mode::Hv,
        pagetables_off: true,
        kpti: true,
    },
];

/// The benchmarks the matrix shows.
const COLUMNS: [&str; 3] = ["syscall", "switch", "spawn"];

fn cell(line: Option<&BenchLine>) -> String {
    match line {
        None => "-".into(),
        Some(l) => match l.exits_per_op {
            Some(exits) => format!("{} ({exits:.2})", l.cycles_per_op),
            None => format!("{} (n/a)", l.cycles_per_op),
        },
    }
}

/// The matrix as a Markdown section: cycles per operation and, in brackets, VM exits per
/// operation.
pub fn markdown(md: &mut String, native: &Side, hv: &Side, extra: &[(Config, Side)]) {
    md.push_str(
        "\n## Page-table policy and KPTI (cycles/op, VM exits/op in brackets)\n\n| configuration |",
    );
    for name in COLUMNS {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(COLUMNS.len()));
    md.push('\n');
    let base = [
        ("native, kpti=off", native),
        ("hv, pagetables = locked, kpti=off", hv),
    ];
    let rows = base
        .into_iter()
        .chain(extra.iter().map(|(config, side)| (config.label, side)));
    for (label, side) in rows {
        let _ = write!(md, "| {label} |");
        for name in COLUMNS {
            let line = side.results.iter().find(|r| r.name == name);
            let _ = write!(md, " {} |", cell(line));
        }
        md.push('\n');
    }
    for (config, side) in extra {
        if let Some(problem) = &side.problem {
            let _ = writeln!(md, "\n**{} run:** {problem}", config.label);
        }
    }
}

/// JSON fields for the matrix: `"<label>": {"<bench>": [cycles, exits_per_op]}`.
pub fn json(extra: &[(Config, Side)]) -> serde_json::Value {
    let mut matrix = serde_json::Map::new();
    for (config, side) in extra {
        let benches: serde_json::Map<String, serde_json::Value> = side
            .results
            .iter()
            .filter(|r| COLUMNS.contains(&r.name.as_str()))
            .map(|line| {
                let exits = line.exits_per_op.map(|e| super::table::rounded(e, 3));
                (
                    line.name.clone(),
                    serde_json::json!([line.cycles_per_op, exits]),
                )
            })
            .collect();
        matrix.insert(config.label.to_string(), benches.into());
    }
    matrix.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(lines: &[&str]) -> Side {
        Side {
            results: lines.iter().filter_map(|l| BenchLine::parse(l)).collect(),
            ..Side::default()
        }
    }

    #[test]
    fn configs_write_their_boot_lines() {
        assert_eq!(EXTRA[0].boot_cfg(), "pagetables = off\n");
        assert_eq!(EXTRA[1].boot_cfg(), "cmdline = kpti=on\n");
        assert_eq!(EXTRA[3].suffix(), "-pt-off-kpti");
    }

    #[test]
    fn the_table_has_a_row_per_configuration() {
        let hv = side(&[
            "bench: name=syscall ops=100 cycles_per_op=300 exits=0 exits_per_op=0.00 exit_cycles=0",
            "bench: name=switch ops=100 cycles_per_op=9000 exits=100 exits_per_op=1.00 exit_cycles=5",
        ]);
        let native = side(&["bench: name=syscall ops=100 cycles_per_op=290 exits=n/a exits_per_op=n/a exit_cycles=n/a"]);
        let extra: Vec<_> = EXTRA.iter().map(|c| (*c, Side::default())).collect();
        let mut md = String::new();
        markdown(&mut md, &native, &hv, &extra);
        assert!(
            md.contains("| hv, pagetables = locked, kpti=off | 300 (0.00) | 9000 (1.00) | - |"),
            "{md}"
        );
        assert!(
            md.contains("| native, kpti=off | 290 (n/a) | - | - |"),
            "{md}"
        );
        assert_eq!(md.matches("\n| ").count(), 1 + 6, "{md}");
        assert!(json(&extra)
            .to_string()
            .starts_with("{\"hv, pagetables = off, kpti=off\":{}"));
    }
}
