//! The second half of the `gdb-bochs` session: stops that need the guest running. A hardware
//! breakpoint hit twice (the second hit must be a later timer tick: continuing from it must not
//! re-trigger at once), Ctrl-C at the idle shell (the runner sends SIGINT to gdb, see `drive`),
//! the first two blocked attacks of `run attacks` (each a SIGSEGV at the attack's RIP, with its
//! audit record), then `detach`: the suite and the shell run on to PASS without the debugger.

use super::script::section;
use crate::boot_tests::shell::Flavour;

/// The Bochs CPU model of `gdb-bochs` (boot_tests::catalog).
const CPU: &str = "tigerlake";

/// Hit once per timer tick, after `time::TICKS` is incremented.
pub const HBREAK_AT: &str = "rampart_kernel::process::schedule::timer_tick";
const TICKS: &str = "rampart_kernel::time::TICKS.v.value";
/// The first two attacks of the suite (guest-kernel/src/attacks/list.rs) and their rules.
pub const BLOCKED: [(&str, &str); 2] = [("segv", "kernel-text"), ("segv2", "pinned-cr")];

/// The commands, after the monitor sections.
pub fn commands() -> String {
    let hit = format!("printf \"hit ticks=%d pc=%#lx\\n\", {TICKS}, $pc\n");
    let segv = "printf \"stop pc=%#lx\\n\", $pc\nmonitor audit\n";
    format!(
        "echo @@hbreak\\n\ndelete\nhbreak {HBREAK_AT}\ncontinue\n{hit}continue\n{hit}delete\n\
         echo @@ctrlc\\n\ncontinue\n\
         echo @@segv\\n\ncontinue\n{segv}\
         echo @@segv2\\n\ncontinue\n{segv}\
         echo @@detach\\n\ndetach\n"
    )
}

/// `key=0x..` or `key=N` on a line (decimal unless 0x).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let word = rest.split_whitespace().next()?;
    match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

/// Failures in the output of [`commands`].
pub fn check(output: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let hbreak = section(output, "hbreak");
    let hits: Vec<(Option<u64>, Option<u64>)> = hbreak
        .lines()
        .filter(|l| l.starts_with("hit "))
        .map(|l| (number_after(l, "ticks="), number_after(l, "pc=")))
        .collect();
    let stops = hbreak.matches(&format!(", {HBREAK_AT} ")).count();
    match hits.as_slice() {
        [(Some(t1), Some(p1)), (Some(t2), Some(p2))] if stops == 2 && p1 == p2 && t2 > t1 => {}
        _ => failures.push(format!(
            "gdb hbreak: expected 2 stops at {HBREAK_AT} on later ticks, got {stops} stops {hits:?}"
        )),
    }
    if !section(output, "ctrlc").contains("Program received signal SIGINT") {
        failures.push("gdb ctrlc: no `Program received signal SIGINT`".to_string());
    }
    for (name, rule) in BLOCKED {
        if let Err(failure) = check_blocked(section(output, name), rule) {
            failures.push(format!("gdb {name}: {failure}"));
        }
    }
    if !section(output, "detach").contains("detached]") {
        failures.push("gdb detach: no `[Inferior 1 (process 1) detached]`".to_string());
    }
    failures
}

/// A SIGSEGV stop whose RIP is that of the newest audit record of a guest attempt (records of
/// the debugger's own writes, rule debugger-write, are left out), with rule `rule`.
fn check_blocked(text: &str, rule: &str) -> Result<(), String> {
    if !text.contains("Program received signal SIGSEGV") {
        return Err("no `Program received signal SIGSEGV`".to_string());
    }
    let pc = text
        .lines()
        .find(|l| l.starts_with("stop pc="))
        .and_then(|l| number_after(l, "pc="))
        .ok_or("no `stop pc=` line")?;
    let newest = text
        .lines()
        .rfind(|l| {
            l.starts_with('#') && l.contains(" rule ") && !l.contains(" rule debugger-write ")
        })
        .ok_or("`monitor audit` shows no record")?;
    match (
        newest.contains(&format!(" rule {rule} ")),
        number_after(newest, "RIP="),
    ) {
        (true, Some(rip)) if rip == pc => Ok(()),
        _ => Err(format!(
            "stopped at {pc:#x}; newest audit record `{newest}` (want rule {rule}, same RIP)"
        )),
    }
}

/// The attack suite's table (run with the debugger attached for its first attacks): every
/// attack blocked by its rule, one audit line each, as in the shell tests
/// (`boot_tests::attacks`); their liveness checks need a background spin this test lacks.
pub fn attack_table(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    let (failures, figures) = crate::boot_tests::attacks::check(lines, Flavour::Hypervisor, CPU, 1);
    let failures = failures
        .into_iter()
        .filter(|f| !f.starts_with("liveness:"))
        .collect();
    let figures = figures
        .into_iter()
        .filter(|(name, _)| name != "attacks_spin_lines_after")
        .collect();
    (failures, figures)
}

/// Failures of the `gdb-kill-bochs` session.
pub fn check_kill(output: &str) -> Vec<String> {
    let mut failures = Vec::new();
    if !section(output, "break").contains(&format!("Breakpoint 1, {}", super::script::BREAK_AT)) {
        failures.push("gdb break: the breakpoint was not hit".to_string());
    }
    if !section(output, "kill").contains("killed]") {
        failures.push("gdb kill: no `[Inferior 1 (process 1) killed]`".to_string());
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "@@hbreak\nHardware assisted breakpoint 3 at 0x1: file a.rs, line 1.\n\n\
        Breakpoint 3, rampart_kernel::process::schedule::timer_tick (from_user=false) at a.rs:54\n\
        hit ticks=1 pc=0xffffffff8400ad9d\n\n\
        Breakpoint 3, rampart_kernel::process::schedule::timer_tick (from_user=false) at a.rs:54\n\
        hit ticks=2 pc=0xffffffff8400ad9d\n\
        @@ctrlc\n\nProgram received signal SIGINT, Interrupt.\n\
        @@segv\n\nProgram received signal SIGSEGV, Segmentation fault.\nstop pc=0xffffffff8400eb7a\n\
        audit: 1 records\n#0 write rule kernel-text RIP=0xffffffff8400eb7a GVA=0x1 GPA=0x2 detail=0x0\n\
        @@segv2\n\nProgram received signal SIGSEGV, Segmentation fault.\nstop pc=0xffffffff8400ec9d\n\
        audit: 2 records\n#0 write rule kernel-text RIP=0xffffffff8400eb7a GVA=0x1 GPA=0x2 detail=0x0\n\
        #1 register write rule pinned-cr RIP=0xffffffff8400ec9d GVA=0x0 GPA=0x0 detail=0x80010033\n\
        @@detach\n[Inferior 1 (process 1) detached]\n";

    #[test]
    fn accepts_a_good_session() {
        assert_eq!(check(GOOD), Vec::<String>::new());
    }

    #[test]
    fn rejects_a_retrigger_and_a_wrong_rip() {
        let retrigger = GOOD.replace("ticks=2", "ticks=1");
        assert!(check(&retrigger)[0].starts_with("gdb hbreak"));
        let moved = GOOD.replace("stop pc=0xffffffff8400ec9d", "stop pc=0xffffffff8400ec9e");
        let failures = check(&moved);
        assert_eq!(failures.len(), 1);
        assert!(failures[0].starts_with("gdb segv2"), "{failures:?}");
        let no_audit = GOOD.replace("rule kernel-text", "rule x");
        assert!(check(&no_audit)[0].starts_with("gdb segv:"));
    }

    #[test]
    fn commands_end_in_detach() {
        assert!(commands().ends_with("detach\n"));
        assert_eq!(check_kill("@@break\n@@kill\n").len(), 2);
    }
}
