//! Test records: the per-test line, the summary table, the closing count line and test-results.json.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::emulator::Launch;
use crate::error::{Context, Result};

/// The outcome of one test (boot test or the host unit tests).
pub struct Record {
    pub name: String,
    /// Where it ran, e.g. `bochs tigerlake` or `qemu max`.
    pub platform: String,
    pub seconds: f64,
    pub failures: Vec<String>,
    pub figures: Vec<(String, u64)>,
    /// Seconds from emulator start to the first `[fw]` line.
    pub firmware_seconds: Option<f64>,
}

impl Record {
    pub fn new(name: &str, cpu: String, launch: &Launch) -> Record {
        Record::host(name, format!("{} {cpu}", launch.emulator.name()))
    }

    pub fn host(name: &str, platform: String) -> Record {
        Record {
            name: name.to_string(),
            platform,
            seconds: 0.0,
            failures: Vec::new(),
            figures: Vec::new(),
            firmware_seconds: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn verdict(&self) -> &'static str {
        if self.passed() {
            "PASS"
        } else {
            "FAIL"
        }
    }

    /// `test <name> ... PASS (12.3 s) ticks=5 exits.total=12`
    pub fn line(&self) -> String {
        format!(
            "test {:<22} {} ({:.1} s) {}",
            self.name,
            self.verdict(),
            self.seconds,
            self.figures_text()
        )
        .trim_end()
        .to_string()
    }

    fn figures_text(&self) -> String {
        let mut text: Vec<String> = self
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(fw) = self.firmware_seconds {
            text.insert(0, format!("fw_at={fw:.1}s"));
        }
        text.join(" ")
    }
}

/// The summary table and the closing `N passed, M failed` line.
pub fn summary(records: &[Record]) -> String {
    let mut text = String::from("\nsummary:\n");
    let _ = writeln!(
        text,
        "  {:<22} {:<6} {:>8}  {:<32} figures",
        "test", "result", "seconds", "platform"
    );
    for r in records {
        let row = format!(
            "  {:<22} {:<6} {:>8.1}  {:<32} {}",
            r.name,
            r.verdict(),
            r.seconds,
            r.platform,
            r.figures_text()
        );
        let _ = writeln!(text, "{}", row.trim_end());
    }
    let passed = records.iter().filter(|r| r.passed()).count();
    let _ = write!(text, "{} passed, {} failed", passed, records.len() - passed);
    text
}

/// Writes `test-results.json`: one object per test.
pub fn write_json(path: &Path, records: &[Record]) -> Result<()> {
    let items: Vec<String> = records.iter().map(json_record).collect();
    let text = format!("[\n{}\n]\n", items.join(",\n"));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).context(|| format!("cannot write {}", path.display()))
}

fn json_record(r: &Record) -> String {
    let figures: Vec<String> = r
        .figures
        .iter()
        .map(|(k, v)| format!("{}: {v}", json_string(k)))
        .collect();
    let failures: Vec<String> = r.failures.iter().map(|f| json_string(f)).collect();
    let firmware = r
        .firmware_seconds
        .map_or("null".to_string(), |s| format!("{s:.2}"));
    format!(
        "  {{\"name\": {}, \"result\": \"{}\", \"seconds\": {:.2}, \"platform\": {}, \"firmware_seconds\": {firmware}, \"figures\": {{{}}}, \"failures\": [{}]}}",
        json_string(&r.name),
        r.verdict(),
        r.seconds,
        json_string(&r.platform),
        figures.join(", "),
        failures.join(", ")
    )
}

pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, failures: &[&str]) -> Record {
        let mut r = Record::host(name, "qemu max".into());
        r.failures = failures.iter().map(|f| f.to_string()).collect();
        r.figures = vec![("ticks".into(), 3)];
        r
    }

    #[test]
    fn summary_ends_with_the_count_line() {
        let text = summary(&[record("a", &[]), record("b", &["missing line"])]);
        assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));
        assert!(text.contains("ticks=3"));
    }

    #[test]
    fn json_escapes() {
        let r = record(
            "kernel",
            &["missing `[fw] error: \\rampart\\kernel.elf:` \"x\""],
        );
        let json = json_record(&r);
        assert!(json.contains(r#""figures": {"ticks": 3}"#));
        assert!(json.contains(r#"\\rampart\\kernel.elf:` \"x\""#));
        assert!(json.contains(r#""result": "FAIL""#));
    }
}
