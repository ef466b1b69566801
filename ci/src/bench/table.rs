//! The dashboard: one row per benchmark (native and hv cycles per operation, their ratio,
//! exits per operation), boot cost, hypervisor size and EPT bytes, as Markdown and JSON.

use std::fmt::Write as _;

use super::parse::{BenchLine, BootFigures};
use super::size::SourceSize;
use serde_json::json;

/// Goal: hv cycles per op at most this many times native (issue 6).
pub const RATIO_GOAL: f64 = 1.02;

/// What one boot reported.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub results: Vec<BenchLine>,
    pub boot: BootFigures,
    /// Why the boot gave no (or partial) results, if it did.
    pub problem: Option<String>,
}

/// What the boots with several processors reported.
#[derive(Clone, Debug, Default)]
pub struct Smp {
    pub cpus: u32,
    pub native: Side,
    pub hv: Side,
}

/// Everything the dashboard shows.
pub struct Dashboard {
    pub cpu: String,
    /// The one-processor boots.
    pub native: Side,
    pub hv: Side,
    /// The boots with several processors, unless skipped.
    pub smp: Option<Smp>,
    /// The page-table policy and KPTI configurations (`policy_matrix::EXTRA`), unless skipped.
    pub matrix: Vec<(super::policy_matrix::Config, Side)>,
    pub source: SourceSize,
    /// The same without the `gdb` feature (the production build).
    pub production_source: SourceSize,
    /// The contract crates linked into the hypervisor (`hypervisor/abi`, `hypervisor/boot-info`),
    /// which the guest and the firmware share: trusted too, counted apart.
    pub contracts_source: SourceSize,
    /// `.text` of BOOTX64.EFI: (virtual size, raw size).
    pub efi_text: Option<(u64, u64)>,
}

/// One benchmark compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub native: Option<u64>,
    pub hv: Option<u64>,
    pub exits_per_op: Option<f64>,
    pub exit_cycles: Option<u64>,
    pub ops: u64,
    /// The result lines themselves (for their extra fields).
    pub native_line: Option<BenchLine>,
    pub hv_line: Option<BenchLine>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        match (self.native, self.hv) {
            (Some(native), Some(hv)) if native > 0 => Some(hv as f64 / native as f64),
            _ => None,
        }
    }

    /// The goals this row misses: `exits` (more per op than [`super::smp_table::expected_exits`],
    /// 0 for most), `ratio` (above [`RATIO_GOAL`]; not for rows whose exits are the design:
    /// IPIs and shootdowns) and the SMP rows' own (`super::smp_table::misses`).
    pub fn misses(&self) -> Vec<&'static str> {
        let mut missed = Vec::new();
        let expected = super::smp_table::expected_exits(self);
        if self.exits_per_op.is_some_and(|e| e > expected + 0.0005) {
            missed.push("exits");
        }
        if expected == 0.0 && self.ratio().is_some_and(|r| r > RATIO_GOAL) {
            missed.push("ratio");
        }
        missed.extend(super::smp_table::misses(self));
        missed
    }
}

impl Dashboard {
    /// Every boot's side.
    pub fn sides(&self) -> impl Iterator<Item = &Side> {
        let smp = self.smp.iter().flat_map(|s| [&s.native, &s.hv]);
        [&self.native, &self.hv].into_iter().chain(smp)
    }

    /// The one-processor rows.
    pub fn rows(&self) -> Vec<Row> {
        rows(&self.native, &self.hv)
    }
}

/// Rows in the hv run's order, then any benchmark only the native run reported.
pub fn rows(native_side: &Side, hv_side: &Side) -> Vec<Row> {
    {
        let mut names: Vec<&str> = hv_side.results.iter().map(|b| b.name.as_str()).collect();
        for line in &native_side.results {
            if !names.contains(&line.name.as_str()) {
                names.push(&line.name);
            }
        }
        let find = |side: &'_ Side, name: &str| -> Option<BenchLine> {
            side.results.iter().find(|b| b.name == name).cloned()
        };
        names
            .into_iter()
            .map(|name| {
                let native = find(native_side, name);
                let hv = find(hv_side, name);
                Row {
                    name: name.to_string(),
                    native: native.as_ref().map(|b| b.cycles_per_op),
                    hv: hv.as_ref().map(|b| b.cycles_per_op),
                    exits_per_op: hv.as_ref().and_then(|b| b.exits_per_op),
                    exit_cycles: hv.as_ref().and_then(|b| b.exit_cycles),
                    ops: hv.as_ref().or(native.as_ref()).map_or(0, |b| b.ops),
                    native_line: native,
                    hv_line: hv,
                }
            })
            .collect()
    }
}

/// The comparison table of `rows` (Markdown).
pub fn row_table(md: &mut String, rows: &[Row]) {
    {
        md.push_str("| benchmark | native cycles/op | hv cycles/op | hv/native | exits/op | exit cycles | ops | goals |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
        for row in rows {
            let misses = row.misses();
            let goals = if misses.is_empty() {
                "met".to_string()
            } else {
                format!("missed: {}", misses.join(", "))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {goals} |",
                row.name,
                number(row.native),
                number(row.hv),
                row.ratio().map_or("-".into(), |r| format!("{r:.3}")),
                row.exits_per_op.map_or("-".into(), |e| format!("{e:.3}")),
                number(row.exit_cycles),
                row.ops,
            );
        }
    }
}

impl Dashboard {
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Rampart bench: native vs hv (Bochs, cpu {})\n\n## One processor\n\n",
            self.cpu
        );
        row_table(&mut md, &self.rows());
        self.tick_notes(&mut md);
        if let Some(smp) = &self.smp {
            super::smp_table::markdown(&mut md, smp, &self.hv);
        }
        if !self.matrix.is_empty() {
            super::policy_matrix::markdown(&mut md, &self.native, &self.hv, &self.matrix);
        }
        let (native, hv) = (&self.native.boot, &self.hv.boot);
        md.push_str("\n## Boot cost (TSC cycles)\n\n| figure | native | hv |\n|---|---:|---:|\n");
        let _ = writeln!(
            md,
            "| kernel TSC at entry (from reset) | {} | {} |",
            number(native.kernel_entry_tsc),
            number(hv.kernel_entry_tsc)
        );
        let _ = writeln!(
            md,
            "| hypervisor hand-off to VMLAUNCH | - | {} |",
            number(hv.handoff_to_vmlaunch)
        );
        let _ = writeln!(
            md,
            "| hand-off to VMLAUNCH without serial logging | - | {} |",
            number(hv.handoff_without_logging)
        );
        md.push_str("\n## Hypervisor size\n\n");
        let s = &self.source;
        let _ = writeln!(
            md,
            "- Rust in hypervisor/src without tests: {} files, {} lines ({} non-blank, non-comment)",
            s.files, s.lines, s.code_lines
        );
        let p = &self.production_source;
        let _ = writeln!(
            md,
            "- the production build (no `gdb` feature: without `gdb/`, `exits/debug.rs` and `vmx/entry_checks/`): {} files, {} lines ({} non-blank, non-comment; goal 5,000)",
            p.files, p.lines, p.code_lines
        );
        let c = &self.contracts_source;
        let _ = writeln!(
            md,
            "- linked in from the contract crates shared with the guest and firmware (hypervisor/abi, hypervisor/boot-info), not counted above: {} files, {} lines ({} non-blank, non-comment)",
            c.files, c.lines, c.code_lines
        );
        let text = self
            .efi_text
            .map_or("unknown".into(), |(virtual_size, raw)| {
                format!("{virtual_size} bytes ({raw} in the file)")
            });
        let _ = writeln!(
            md,
            "- .text of BOOTX64.EFI (firmware and hypervisor linked together): {text}"
        );
        let _ = writeln!(
            md,
            "- EPT at launch: {} tables, {} KiB",
            number(hv.ept_tables),
            number(hv.ept_kib)
        );
        let smp_sides = self.smp.iter().flat_map(|s| {
            [
                ("native (SMP)", &s.native.problem),
                ("hv (SMP)", &s.hv.problem),
            ]
        });
        let sides = [("native", &self.native.problem), ("hv", &self.hv.problem)];
        for (side, problem) in sides.into_iter().chain(smp_sides) {
            if let Some(problem) = problem {
                let _ = writeln!(md, "\n**{side} run:** {problem}");
            }
        }
        md
    }

    /// The tick benchmark's extra figures, when present.
    fn tick_notes(&self, md: &mut String) {
        let extra = |side: &Side, key: &str| {
            side.results
                .iter()
                .find(|b| b.name == "tick")
                .and_then(|b| b.extra(key))
        };
        if extra(&self.hv, "lost_ppm").is_none() && extra(&self.native, "lost_ppm").is_none() {
            return;
        }
        md.push_str("\n| timer tick | native | hv |\n|---|---:|---:|\n");
        for (label, key) in [
            ("loop iterations lost per second", "lost_per_second"),
            ("CPU lost (ppm)", "lost_ppm"),
            ("TSC cycles per ms", "tsc_per_ms"),
        ] {
            let _ = writeln!(
                md,
                "| {label} | {} | {} |",
                number(extra(&self.native, key)),
                number(extra(&self.hv, key))
            );
        }
    }

    pub fn json(&self) -> String {
        let smp = self
            .smp
            .as_ref()
            .map(|smp| json!({"cpus": smp.cpus, "benchmarks": json_rows(&rows_of_smp(smp))}));
        let (native, hv, s) = (&self.native.boot, &self.hv.boot, &self.source);
        let dashboard = json!({
            "emulator": "bochs",
            "cpu": self.cpu,
            "benchmarks": json_rows(&self.rows()),
            "smp": smp,
            "page_table_policy": super::policy_matrix::json(&self.matrix),
            "boot": {
                "native_kernel_entry_tsc": native.kernel_entry_tsc,
                "hv_kernel_entry_tsc": hv.kernel_entry_tsc,
                "handoff_to_vmlaunch_cycles": hv.handoff_to_vmlaunch,
                "handoff_without_logging_cycles": hv.handoff_without_logging,
            },
            "hypervisor": {
                "source_files": s.files,
                "source_lines": s.lines,
                "code_lines": s.code_lines,
                "production_code_lines": self.production_source.code_lines,
                "contracts_code_lines": self.contracts_source.code_lines,
                "efi_text_bytes": self.efi_text.map(|(virtual_size, _)| virtual_size),
                "efi_text_raw_bytes": self.efi_text.map(|(_, raw)| raw),
                "ept_tables": hv.ept_tables,
                "ept_kib": hv.ept_kib,
            },
        });
        serde_json::to_string_pretty(&dashboard).expect("the dashboard serializes") + "\n"
    }
}

fn rows_of_smp(smp: &Smp) -> Vec<Row> {
    rows(&smp.native, &smp.hv)
}

/// `value` rounded to `places` decimals (the figures' printed precision).
pub(super) fn rounded(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// One JSON object per row.
fn json_rows(rows: &[Row]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|row| {
            json!({
                "name": row.name,
                "native_cycles_per_op": row.native,
                "hv_cycles_per_op": row.hv,
                "ratio": row.ratio().map(|r| rounded(r, 4)),
                "exits_per_op": row.exits_per_op.map(|e| rounded(e, 3)),
                "exit_cycles": row.exit_cycles,
                "ops": row.ops,
                "missed": row.misses(),
                "native_extra": json_extra(row.native_line.as_ref()),
                "hv_extra": json_extra(row.hv_line.as_ref()),
            })
        })
        .collect()
}

/// A result line's extra fields as a JSON object (`{}` for none or no line).
fn json_extra(line: Option<&BenchLine>) -> serde_json::Map<String, serde_json::Value> {
    line.map_or_else(serde_json::Map::new, |l| {
        l.extra
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect()
    })
}

pub(super) fn number(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(lines: &[&str]) -> Side {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        Side {
            results: super::super::parse::bench_lines(&lines),
            boot: BootFigures::parse(&lines),
            problem: None,
        }
    }

    fn dashboard() -> Dashboard {
        Dashboard {
            matrix: Vec::new(),
            cpu: "tigerlake".into(),
            native: side(&[
                "[kernel] tsc at entry: 1000",
                "bench: name=syscall ops=10 cycles_per_op=100 exits=n/a exits_per_op=n/a exit_cycles=n/a",
                "bench: name=fault ops=2 cycles_per_op=1000 exits=n/a exits_per_op=n/a exit_cycles=n/a",
            ]),
            hv: side(&[
                "[hv] EPT: identity map of 4 GiB in 6 tables (24 KiB), 2M pages on",
                "[hv] hand-off to VMLAUNCH: 500 TSC cycles",
                "[kernel] tsc at entry: 3000",
                "bench: name=syscall ops=10 cycles_per_op=101 exits=0 exits_per_op=0.000 exit_cycles=0",
                "bench: name=fault ops=2 cycles_per_op=1100 exits=4 exits_per_op=2.000 exit_cycles=900",
            ]),
            source: SourceSize {
                files: 3,
                lines: 300,
                code_lines: 200,
            },
            production_source: SourceSize {
                files: 2,
                lines: 200,
                code_lines: 150,
            },
            contracts_source: SourceSize {
                files: 1,
                lines: 50,
                code_lines: 40,
            },
            efi_text: Some((4096, 4608)),
            smp: None,
        }
    }

    #[test]
    fn rows_compare_and_flag_missed_goals() {
        let rows = dashboard().rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ratio(), Some(1.01));
        assert!(rows[0].misses().is_empty());
        assert_eq!(rows[1].misses(), ["exits", "ratio"]);
    }

    #[test]
    fn markdown_has_the_table_and_the_figures() {
        let md = dashboard().markdown();
        assert!(md.contains("| syscall | 100 | 101 | 1.010 | 0.000 | 0 | 10 | met |"));
        assert!(
            md.contains("| fault | 1000 | 1100 | 1.100 | 2.000 | 900 | 2 | missed: exits, ratio |")
        );
        assert!(md.contains("| kernel TSC at entry (from reset) | 1000 | 3000 |"));
        assert!(md.contains("| hypervisor hand-off to VMLAUNCH | - | 500 |"));
        assert!(md.contains("EPT at launch: 6 tables, 24 KiB"));
        assert!(md.contains("4096 bytes (4608 in the file)"));
    }

    #[test]
    fn json_carries_the_same_figures_and_parses_back() {
        let json: serde_json::Value = serde_json::from_str(&dashboard().json()).unwrap();
        let fault = &json["benchmarks"][1];
        assert_eq!(fault["name"], "fault");
        assert_eq!(fault["native_cycles_per_op"], 1000);
        assert_eq!(fault["hv_cycles_per_op"], 1100);
        assert_eq!(fault["ratio"], 1.1);
        assert_eq!(fault["exits_per_op"], 2.0);
        assert_eq!(fault["missed"], json!(["exits", "ratio"]));
        assert_eq!(json["boot"]["handoff_to_vmlaunch_cycles"], 500);
        assert_eq!(json["hypervisor"]["ept_kib"], 24);
        assert_eq!(json["hypervisor"]["efi_text_bytes"], 4096);
        assert_eq!(json["smp"], serde_json::Value::Null);
    }
}
