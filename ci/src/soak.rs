//! `cargo xtask soak --minutes M` (and the `soak-bochs` boot test, two minutes): one hv boot
//! that repeats rounds of spawn/exit (`run hello` three times), the exit fuzzer (`run fuzz 300
//! 1`, the same seed every round) and the attack suite until the time is up, then `exit`.
//! Afterwards the serial log must show every round complete, the free frame count after each
//! round's attack suite back at the same value from the second round on (the first fills the
//! kernel's program-text cache), the same audit-record count per suite, and no unexpected fuzz
//! result. The kernel keeps no heap counter, so heap use is not checked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::boot_tests::session::Report;
use crate::emulator::console::Console;
use crate::emulator::{self, Boot, Input, Launch};
use crate::error::Result;

/// Each wait of a round (Bochs).
const STEP_LIMIT: Duration = Duration::from_secs(120);
const ROUND: &[(&str, &str)] = &[
    ("run hello", "[sh] hello exited with code 0"),
    ("run hello", "[sh] hello exited with code 0"),
    ("run hello", "[sh] hello exited with code 0"),
    ("run fuzz 300 1", "[sh] fuzz exited with code 0"),
    ("run attacks", "[sh] attacks exited with code 0"),
];
const PROMPT: &str = "sh> ";

/// Boots `launch` (an hv image) and soaks it for `duration`.
pub fn boot(launch: &Launch, duration: Duration) -> Result<(Boot, Option<Report>)> {
    let slot = Arc::new(Mutex::new(Report::default()));
    let filled = Arc::clone(&slot);
    let first = launch.timeout;
    let input = Input::Script(Box::new(move |console: &Console, abort: &AtomicBool| {
        let report = rounds(console, first, duration);
        if !report.failures.is_empty() {
            abort.store(true, Ordering::SeqCst);
        }
        *filled.lock().expect("soak report") = report;
    }));
    let boot = emulator::boot_with(launch, input)?;
    let mut report = std::mem::take(&mut *slot.lock().expect("soak report"));
    if report.failures.is_empty() {
        let (failures, figures) = check(&boot.lines);
        report.failures.extend(failures);
        report.figures.extend(figures);
    }
    Ok((boot, Some(report)))
}

fn rounds(console: &Console, first: Duration, duration: Duration) -> Report {
    let mut report = Report::default();
    let mut cursor = 0;
    if let Err(e) = console.wait_for(&mut cursor, &["[kernel] ready"], first) {
        report.failures.push(format!("soak: boot: {e}"));
        return report;
    }
    let start = Instant::now();
    let mut done = 0u64;
    while done == 0 || start.elapsed() < duration {
        for (send, reply) in ROUND {
            let step = console
                .wait_for(&mut cursor, &[PROMPT], STEP_LIMIT)
                .and_then(|()| console.send_line(send).map_err(|e| e.to_string()))
                .and_then(|()| console.wait_for(&mut cursor, &[reply], STEP_LIMIT));
            if let Err(e) = step {
                report
                    .failures
                    .push(format!("soak: round {}: `{send}`: {e}", done + 1));
                return report;
            }
        }
        done += 1;
    }
    let _ = console.wait_for(&mut cursor, &[PROMPT], STEP_LIMIT);
    let _ = console.send_line("exit");
    report.figures.push(("soak_rounds".to_string(), done));
    report
        .figures
        .push(("soak_seconds".to_string(), start.elapsed().as_secs()));
    report
}

/// The number after `key` on `line`.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Checks the soak's serial log (see the module doc); returns failures and figures.
pub fn check(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    let mut failures = Vec::new();
    let mut figures = Vec::new();
    let frames: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("(attacks) exited with code 0"))
        .filter_map(|l| number_after(l, " -> "))
        .collect();
    let audits: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("[kernel] attacks: ") && l.contains("audit records +"))
        .filter_map(|l| number_after(l, "audit records +"))
        .collect();
    let unexpected = lines
        .iter()
        .filter(|l| {
            l.contains("fuzz: ") && l.contains(" operations, ") && l.contains(" unexpected")
        })
        .filter_map(|l| number_after(l, "operations, "))
        .filter(|&n| n != 0)
        .count();
    if frames.len() < 2 {
        failures.push(format!(
            "soak: {} attack-suite rounds logged their free frames, want at least 2",
            frames.len()
        ));
    } else {
        let baseline = frames[1];
        if let Some((round, value)) = frames
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, &v)| v != baseline)
        {
            failures.push(format!(
                "soak: free frames after round {} are {value}, round 2 left {baseline} (a leak)",
                round + 1
            ));
        }
        figures.push(("soak_free_frames_baseline".to_string(), baseline));
        figures.push(("soak_free_frames_first".to_string(), frames[0]));
    }
    if audits.windows(2).any(|w| w[0] != w[1]) {
        failures.push(format!(
            "soak: audit records per suite differ between rounds: {audits:?}"
        ));
    }
    if let Some(&per_suite) = audits.first() {
        figures.push(("soak_audit_per_suite".to_string(), per_suite));
    }
    if unexpected > 0 {
        failures.push(format!(
            "soak: {unexpected} fuzz runs had unexpected results"
        ));
    }
    (failures, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(frames: &[u64], audits: &[u64]) -> Vec<String> {
        let mut lines = Vec::new();
        for (f, a) in frames.iter().zip(audits) {
            lines.push(
                "[kernel] fuzz: seed 1, 300 operations, 1 threads (one per CPU), under Rampart"
                    .into(),
            );
            lines.push("[kernel] fuzz: 300 operations, 0 unexpected, seed 1 (0 threads lost, 5 TSC cycles)".into());
            lines.push(format!(
                "[kernel] attacks: 21 blocked, 0 succeeded, 3 n/a; audit records +{a}"
            ));
            lines.push(format!(
                "[kernel] pid 9 (attacks) exited with code 0: 26 frames freed, free frames 1 -> {f}"
            ));
        }
        lines
    }

    #[test]
    fn stable_rounds_pass_and_a_leak_fails() {
        let (failures, figures) = check(&log(&[90, 100, 100, 100], &[21, 21, 21, 21]));
        assert!(failures.is_empty(), "{failures:?}");
        assert!(figures.contains(&("soak_free_frames_baseline".into(), 100)));
        let (failures, _) = check(&log(&[90, 100, 99], &[21, 21, 21]));
        assert!(failures[0].contains("a leak"), "{failures:?}");
        let (failures, _) = check(&log(&[90, 100], &[21, 22]));
        assert!(failures[0].contains("audit records"), "{failures:?}");
        let (failures, _) = check(&log(&[90], &[21]));
        assert!(failures[0].contains("at least 2"));
    }
}
