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
    /// On failure, the tails of the serial and emulator logs as printed under the test's line.
    pub evidence: String,
    /// The host tests' binaries, each with its own result (JUnit test cases).
    pub binaries: Vec<HostBinary>,
}

/// One host test binary's result, read from `cargo test`'s output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostBinary {
    /// The crate and the source, e.g. `rampart_loader src/lib.rs`.
    pub name: String,
    pub passed: u32,
    pub failed: u32,
    pub failed_tests: Vec<String>,
    pub seconds: f64,
    /// Whether its `test result:` line came (a crash or a build error leaves it out).
    pub finished: bool,
    /// What it printed, from its "Running" line on.
    pub output: String,
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
            evidence: String::new(),
            binaries: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn verdict(&self) -> &'static str {
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

/// `test-results.json`'s object for one test (field names and order are the file's schema).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JsonRecord {
    pub name: String,
    pub result: String,
    pub seconds: f64,
    pub platform: String,
    pub firmware_seconds: Option<f64>,
    pub figures: serde_json::Map<String, serde_json::Value>,
    pub failures: Vec<String>,
}

impl From<&Record> for JsonRecord {
    fn from(r: &Record) -> JsonRecord {
        JsonRecord {
            name: r.name.clone(),
            result: r.verdict().to_string(),
            seconds: hundredths(r.seconds),
            platform: r.platform.clone(),
            firmware_seconds: r.firmware_seconds.map(hundredths),
            figures: r
                .figures
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
                .collect(),
            failures: r.failures.clone(),
        }
    }
}

/// Seconds rounded to hundredths, as the file has always carried them.
fn hundredths(seconds: f64) -> f64 {
    (seconds * 100.0).round() / 100.0
}

/// Writes `test-results.json`: one object per test.
pub fn write_json(path: &Path, records: &[Record]) -> Result<()> {
    let items: Vec<JsonRecord> = records.iter().map(JsonRecord::from).collect();
    let text = serde_json::to_string_pretty(&items).expect("test records serialize");
    write_file(path, text + "\n")
}

/// Copies the logs of every failed boot test's run directory (all but the disk image) to
/// `into/<test>/`, after emptying `into`; returns how many runs it kept. CI uploads `into`.
pub fn keep_failed_runs(records: &[Record], into: &Path) -> Result<usize> {
    if into.exists() {
        fs::remove_dir_all(into).context(|| format!("cannot empty {}", into.display()))?;
    }
    let mut kept = 0;
    for record in records.iter().filter(|r| !r.passed()) {
        let run_dir = crate::paths::run_dir(&record.name);
        let Ok(entries) = fs::read_dir(&run_dir) else {
            continue;
        };
        let target = into.join(&record.name);
        fs::create_dir_all(&target).context(|| format!("cannot create {}", target.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .to_string_lossy()
                .starts_with(crate::emulator::DISK_IMAGE)
            {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                fs::copy(entry.path(), target.join(&name))
                    .context(|| format!("cannot copy {}", entry.path().display()))?;
            }
        }
        kept += 1;
    }
    Ok(kept)
}

/// Creates `path`'s folder and writes `text`.
pub fn write_file(path: &Path, text: String) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).context(|| format!("cannot write {}", path.display()))
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
    fn json_escapes_and_parses_back() {
        let r = record(
            "kernel",
            &["missing `[fw] error: \\rampart\\kernel.elf:` \"x\"\u{1b}[0m"],
        );
        let dir = std::env::temp_dir().join(format!("rampart-report-{}", std::process::id()));
        let path = dir.join("test-results.json");
        write_json(&path, &[r, record("ok", &[])]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let back: Vec<JsonRecord> = serde_json::from_str(&text).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].result, "FAIL");
        assert_eq!(
            back[0].failures,
            ["missing `[fw] error: \\rampart\\kernel.elf:` \"x\"\u{1b}[0m"]
        );
        assert_eq!(back[0].figures["ticks"], 3);
        assert_eq!(back[1].result, "PASS");
        assert_eq!(back[1].firmware_seconds, None);
    }
}
