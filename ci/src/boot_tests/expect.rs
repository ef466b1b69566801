//! What a boot test expects on the serial console, and checking a finished boot against it.
//! Pure functions over the captured lines, so they are unit-tested without an emulator.

use crate::emulator::{Boot, Outcome};
use crate::serial::ResultLine;

/// One expected line: it contains each part, in this order.
pub type LinePattern = &'static [&'static str];

/// The serial contract of one boot test.
#[derive(Clone, Copy)]
pub struct Expectations {
    /// Lines that must appear, in this order (other lines may come between).
    pub ordered: &'static [LinePattern],
    /// Substrings that must appear on no line.
    pub absent: &'static [&'static str],
    /// The verdict of the final `RAMPART-RESULT:` line and the words it must start with.
    pub pass: bool,
    pub result_words: &'static [&'static str],
    /// Value checks on parsed lines.
    pub checks: &'static [Check],
}

/// Checks of values printed on the console.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// `[kernel] timer ticks: N` and the result line's `ticks=N`, both > 0.
    Ticks,
    /// `[hv] exits: total=T ... CPUID=C VMCALL=V` with T > 0, C >= 1, V >= 2.
    Exits,
    /// A line containing each part, anywhere (for lines whose place among others is not fixed,
    /// such as the hypervisor's report of the CPUs it brought up).
    Present(LinePattern),
}

const TICKS_PREFIX: &str = "[kernel] timer ticks: ";
const EXITS_PREFIX: &str = "[hv] exits: ";
/// The guest's hypercalls in a normal boot: version query and shutdown, at least.
const MIN_VMCALL_EXITS: u64 = 2;

/// The verdict on one boot: failed expectations (empty means pass) and figures worth keeping.
#[derive(Default)]
pub struct Evaluation {
    pub failures: Vec<String>,
    pub figures: Vec<(String, u64)>,
}

/// Checks a finished boot against `expect`.
pub fn evaluate(expect: &Expectations, boot: &Boot) -> Evaluation {
    let mut eval = Evaluation::default();
    match &boot.outcome {
        Outcome::Verdict(result) => check_result(expect, result, &mut eval),
        Outcome::Timeout => eval.failures.push(format!(
            "timeout after {:.0} s: no RAMPART-RESULT line",
            boot.seconds
        )),
        Outcome::Exited(status) => eval.failures.push(format!(
            "emulator exited ({status}) without a RAMPART-RESULT line"
        )),
        Outcome::Stopped(stop) => eval
            .failures
            .push(format!("{stop} before a RAMPART-RESULT line")),
    }
    check_ordered(expect.ordered, &boot.lines, &mut eval.failures);
    check_absent(expect.absent, &boot.lines, &mut eval.failures);
    for check in expect.checks {
        let result = match &boot.outcome {
            Outcome::Verdict(result) => Some(result),
            _ => None,
        };
        run_check(*check, &boot.lines, result, &mut eval);
    }
    eval
}

fn check_result(expect: &Expectations, result: &ResultLine, eval: &mut Evaluation) {
    let words_match = result.words.len() >= expect.result_words.len()
        && expect
            .result_words
            .iter()
            .zip(&result.words)
            .all(|(want, got)| want == got);
    if result.pass != expect.pass || !words_match {
        let want = [&[verdict(expect.pass)][..], expect.result_words].concat();
        eval.failures.push(format!(
            "result line: expected `RAMPART-RESULT: {} ...`, got `RAMPART-RESULT: {} {}`",
            want.join(" "),
            result.verdict(),
            result.words.join(" ")
        ));
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Whether `line` contains every part, left to right.
pub fn line_matches(line: &str, parts: LinePattern) -> bool {
    let mut rest = line;
    parts.iter().all(|part| match rest.find(part) {
        Some(at) => {
            rest = &rest[at + part.len()..];
            true
        }
        None => false,
    })
}

fn check_ordered(patterns: &[LinePattern], lines: &[String], failures: &mut Vec<String>) {
    let mut next = 0;
    for parts in patterns {
        let shown = parts.join(" … ");
        match lines[next..]
            .iter()
            .position(|line| line_matches(line, parts))
        {
            Some(offset) => next += offset + 1,
            None if lines.iter().any(|line| line_matches(line, parts)) => {
                failures.push(format!("line `{shown}` appeared, but out of order"))
            }
            None => failures.push(format!("missing line `{shown}`")),
        }
    }
}

fn check_absent(absent: &[&str], lines: &[String], failures: &mut Vec<String>) {
    for text in absent {
        if let Some(line) = lines.iter().find(|line| line.contains(text)) {
            failures.push(format!("unexpected `{text}` in line `{line}`"));
        }
    }
}

fn run_check(check: Check, lines: &[String], result: Option<&ResultLine>, eval: &mut Evaluation) {
    let outcome = match check {
        Check::Ticks => check_ticks(lines, result, &mut eval.figures),
        Check::Exits => check_exits(lines, &mut eval.figures),
        Check::Present(parts) => match lines.iter().any(|line| line_matches(line, parts)) {
            true => Ok(()),
            false => Err(format!("missing line `{}`", parts.join(" … "))),
        },
    };
    if let Err(failure) = outcome {
        eval.failures.push(failure);
    }
}

fn check_ticks(
    lines: &[String],
    result: Option<&ResultLine>,
    figures: &mut Vec<(String, u64)>,
) -> Result<(), String> {
    let line = find_after(lines, TICKS_PREFIX).ok_or("no `[kernel] timer ticks: N` line")?;
    let ticks: u64 = line
        .trim()
        .parse()
        .map_err(|_| format!("bad tick count `{line}`"))?;
    figures.push(("ticks".into(), ticks));
    if ticks == 0 {
        return Err("`[kernel] timer ticks: 0`: the timer never fired".into());
    }
    let Some(result) = result else {
        return Ok(());
    };
    let result_ticks = result
        .value("ticks")
        .and_then(|text| text.parse::<u64>().ok());
    match result_ticks {
        Some(n) if n > 0 => {
            figures.push(("result_ticks".into(), n));
            Ok(())
        }
        _ => Err("result line lacks `ticks=N` with N > 0".into()),
    }
}

fn check_exits(lines: &[String], figures: &mut Vec<(String, u64)>) -> Result<(), String> {
    let line = find_after(lines, EXITS_PREFIX).ok_or("no `[hv] exits: ` line")?;
    let counts = parse_counts(line).ok_or_else(|| format!("cannot parse `[hv] exits: {line}`"))?;
    let count = |name: &str| counts.iter().find(|(key, _)| key == name).map(|(_, n)| *n);
    figures.extend(counts.iter().map(|(key, n)| (format!("exits.{key}"), *n)));
    match (count("total"), count("CPUID"), count("VMCALL")) {
        (Some(total), Some(cpuid), Some(vmcall))
            if total > 0 && cpuid >= 1 && vmcall >= MIN_VMCALL_EXITS =>
        {
            Ok(())
        }
        _ => Err(format!(
            "exit counts `{line}`: want total>0, CPUID>=1, VMCALL>={MIN_VMCALL_EXITS}"
        )),
    }
}

/// The text after `prefix` on the first line containing it.
fn find_after<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|line| line.find(prefix).map(|at| &line[at + prefix.len()..]))
}

/// Parses `name=count name=count ...` (every word must be one).
pub fn parse_counts(text: &str) -> Option<Vec<(String, u64)>> {
    text.split_whitespace()
        .map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
#[path = "expect_tests.rs"]
mod tests;
