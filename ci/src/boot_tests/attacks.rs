//! The attack suite in the shell sessions: a background `spin`, `run attacks`, then `run hello`
//! and the spin's end (liveness); and the checks on the table the kernel printed: every row's
//! verdict per mode and CPU model, the summary counts, and one hypervisor audit record per
//! blocked attack. The rows are the contract with guest-kernel/src/attacks/.

use super::session::Step;
use super::shell::{self, Exits, Flavour};

const PROMPT: &str = "sh> ";
/// The background spin: `SPIN_NAME i` lines for i in 0..SPIN_LINES, 50 ms apart, so it runs
/// before, during and after the suite.
const SPIN_NAME: &str = "S";
const SPIN_LAST: &str = "S 119";

/// The steps, in order, for the shell session (after the other programs, before `exit`).
pub const SPIN_STEP: Step = Step {
    label: "attacks-spin",
    send: Some("run spin S 120 &"),
    expect: &[&["[sh] started spin as pid"], &[PROMPT]],
};
pub const RUN_STEP: Step = Step {
    label: "attacks",
    send: Some("run attacks"),
    expect: &[
        &["; audit records +"],
        &["[sh] attacks exited with code"],
        &[PROMPT],
    ],
};
pub const HELLO_STEP: Step = Step {
    label: "attacks-hello",
    send: Some("run hello"),
    expect: &[&["[sh] hello exited with code"], &[PROMPT]],
};
pub const SPIN_DONE_STEP: Step = Step {
    label: "attacks-spin-done",
    send: None,
    expect: &[&[SPIN_LAST]],
};

const HEADER: &str = "attacks: 38 attacks, each in its own kernel thread";
const ROW: &str = "[kernel] attack: ";
const SUMMARY: &str = "[kernel] attacks: ";
const AUDIT: &str = "[hv] audit #";
/// The middle of a hypervisor audit line (`... blocked write by rule kernel-text at ...`).
const AUDIT_RULE: &str = " by rule ";
/// Bochs CPU models without SMEP (the kernel then never sets CR4.SMEP).
const WITHOUT_SMEP: &[&str] = &["corei7_sandy_bridge_2600k"];

/// Each attack's verdict natively and under Rampart (one rule per attack, from its audit record).
/// Natively the SMI is taken at the default SMBASE (QEMU q35 TCG with OVMF without SMM).
const TABLE: [(&str, &str, &str); 38] = [
    ("text-write", "SUCCEEDED", "BLOCKED (kernel-text)"),
    ("cr0-wp", "SUCCEEDED", "BLOCKED (pinned-cr)"),
    ("text-alias", "SUCCEEDED", "BLOCKED (kernel-text)"),
    ("heap-shellcode", "SUCCEEDED", "BLOCKED (w^x-no-exec)"),
    ("syscall-table", "SUCCEEDED", "BLOCKED (kernel-rodata)"),
    (
        "idt-entry",
        "SUCCEEDED",
        "BLOCKED (locked-descriptor-table)",
    ),
    (
        "lidt-forged",
        "SUCCEEDED",
        "BLOCKED (locked-descriptor-table)",
    ),
    ("wrmsr-lstar", "SUCCEEDED", "BLOCKED (locked-msr)"),
    ("cr4-smep", "SUCCEEDED", "BLOCKED (pinned-cr)"),
    (
        "hv-read",
        "N/A (no hypervisor)",
        "BLOCKED (hypervisor-memory)",
    ),
    (
        "hv-write",
        "N/A (no hypervisor)",
        "BLOCKED (hypervisor-memory)",
    ),
    // The TSS page is read-only once the tables are locked (RSP0 is a fixed entry stack).
    ("tss-rsp0", "SUCCEEDED", "BLOCKED (locked-descriptor-table)"),
    (
        "vmcall-protect",
        "N/A (no hypervisor)",
        "BLOCKED (kernel-text)",
    ),
    (
        "vmcall-revoke",
        "N/A (no hypervisor)",
        "BLOCKED (kernel-text)",
    ),
    (
        "grant-unmeasured",
        "N/A (no hypervisor)",
        "BLOCKED (unmeasured-code)",
    ),
    (
        "grant-header",
        "N/A (no hypervisor)",
        "BLOCKED (unmeasured-code)",
    ),
    (
        "grant-prefix",
        "N/A (no hypervisor)",
        "BLOCKED (unmeasured-code)",
    ),
    // Needs a second CPU (`one_cpu` below): a writer on it races the grant's compare.
    ("grant-race", "SUCCEEDED", "BLOCKED (unmeasured-code)"),
    // What mode-based execute control gives (program text user-mode execute only); no Bochs
    // model has it, so there the row succeeds (`KNOWN_GAPS`).
    ("grant-cpl0", "SUCCEEDED", "BLOCKED (w^x-no-exec)"),
    // Needs a second CPU (`one_cpu` below) and a hypervisor.
    (
        "stale-tlb",
        "N/A (no hypervisor)",
        "BLOCKED (protected-range)",
    ),
    ("msr-unknown-write", "SUCCEEDED", "BLOCKED (msr)"),
    ("msr-unknown-read", "SUCCEEDED", "BLOCKED (msr)"),
    ("apic-base-move", "SUCCEEDED", "BLOCKED (ipi-delivery)"),
    // The runner's Bochs machine has no device with a memory BAR (`NO_MEMORY_BAR` below).
    ("bar-over-ram", "SUCCEEDED", "BLOCKED (device-bar)"),
    // Natively the unaligned dword leaves Command's bus-master bit alone (QEMU q35).
    (
        "pci-unaligned",
        "N/A (the platform leaves bus mastering off)",
        "BLOCKED (port-access)",
    ),
    // Natively QEMU's ICH9 keeps SLP_TYP 5 and enters no state (on real Intel chipsets it is
    // S3); the hypervisor refuses every SLP_EN write.
    ("acpi-s3", "SUCCEEDED", "BLOCKED (sleep-state)"),
    // QEMU q35 has AHCI, no PCI IDE; Bochs has the PIIX3 IDE (00:01.1).
    ("ide-dma", "N/A (no PCI IDE controller)", "BLOCKED (dma)"),
    ("smi-self", "SUCCEEDED", "BLOCKED (ipi-delivery)"),
    // Natively QEMU's ICH9 raises the SMI once APMC_EN is set (the attack sets it).
    ("apm-smi", "SUCCEEDED", "BLOCKED (smi)"),
    // Remaps of protected pages by their kernel page-table entry, a forged root or another
    // CPU's root in CR3, a kernel-half entry in the CPU's own root: `pagetables = locked` (the
    // default) blocks them; under `pagetables = off` they succeed (`PAGE_TABLE_ROWS`).
    ("idt-remap", "SUCCEEDED", "BLOCKED (page-table)"),
    ("gdt-remap", "SUCCEEDED", "BLOCKED (page-table)"),
    ("syscall-table-remap", "SUCCEEDED", "BLOCKED (page-table)"),
    ("lstar-page-remap", "SUCCEEDED", "BLOCKED (page-table)"),
    ("forged-cr3", "SUCCEEDED", "BLOCKED (cr3-load)"),
    ("pml4-kernel-entry", "SUCCEEDED", "BLOCKED (page-table)"),
    // Needs a second CPU (`one_cpu` below).
    ("cr3-other-cpu", "SUCCEEDED", "BLOCKED (cr3-load)"),
    // The CPU's directory table is the guest's to write; the alias's store meets EPT, with or
    // without the page-table lock.
    ("cpu-table-alias", "SUCCEEDED", "BLOCKED (kernel-rodata)"),
    // Needs a second CPU to restart (`one_cpu` below).
    ("init-sipi-wake", "SUCCEEDED", "BLOCKED (ipi-delivery)"),
];

/// The hypervisor's `pagetables` boot policy (boot.cfg; `locked` by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pagetables {
    Locked,
    Off,
}

/// The rows only `pagetables = locked` blocks: under `off` they succeed, as natively.
pub const PAGE_TABLE_ROWS: [&str; 7] = [
    "idt-remap",
    "gdt-remap",
    "syscall-table-remap",
    "lstar-page-remap",
    "forged-cr3",
    "pml4-kernel-entry",
    "cr3-other-cpu",
];

/// Bochs CPU models without x2APIC: the hypervisor then leaves the guest's xAPIC unchecked (it
/// logs `[hv] no x2APIC: ... guest IPIs unchecked`), so the SMI's ICR write is not audited; the
/// default SMBASE area is the hypervisor's (an RSM-only handler), so no marker is written.
const WITHOUT_X2APIC: &[&str] = &["corei7_sandy_bridge_2600k"];
const SMI_NOT_TAKEN: &str = "N/A (no marker written)";

/// The Bochs machine of the boot tests (i440fx, PIIX3 IDE/ISA, PIIX4 ACPI, ISA VGA) has no
/// PCI function with a 32-bit memory BAR, so there is no BAR to move. (With `slot1=pcivga` the
/// VGA's BAR0 is there and the row reads `BLOCKED (device-bar)`, checked by hand.)
const NO_MEMORY_BAR: &str = "N/A (no 32-bit memory BAR)";

/// Verdicts under Rampart that are holes, not protection, pinned here so a change either way
/// shows (`UNEXPECTED (...)` rows). None today: `ide-dma` was one until the hypervisor turned
/// Bus Master Enable off at hand-off and trapped the IDE bus-master registers.
const KNOWN_GAPS: &[(&str, &str)] = &[("grant-cpl0", "SUCCEEDED")];

/// Attacks that need another CPU, and their verdict on a machine with one.
const NEEDS_TWO_CPUS: &[&str] = &["init-sipi-wake", "stale-tlb", "grant-race", "cr3-other-cpu"];
const ONE_CPU: &str = "N/A (one CPU)";
/// Natively the hypervisor's absence is reported first, whatever the processor count.
const NO_HYPERVISOR: &str = "N/A (no hypervisor)";

/// The verdicts expected for `flavour` on Bochs model `cpu` (QEMU's `-cpu max` has SMEP) with
/// `cpus` processors, under the default `pagetables = locked`.
#[cfg(test)]
pub fn expected(flavour: Flavour, cpu: &str, cpus: u32) -> Vec<(&'static str, &'static str)> {
    expected_under(flavour, cpu, cpus, Pagetables::Locked)
}

/// [`expected`] under the hypervisor policy `pagetables`.
pub fn expected_under(
    flavour: Flavour,
    cpu: &str,
    cpus: u32,
    pagetables: Pagetables,
) -> Vec<(&'static str, &'static str)> {
    TABLE
        .iter()
        .map(|&(name, native, hv)| match (flavour, name) {
            (_, "cr4-smep") if WITHOUT_SMEP.contains(&cpu) => (name, "N/A (CPU lacks SMEP)"),
            (Flavour::Native, _) if native == NO_HYPERVISOR => (name, native),
            _ if cpus < 2 && NEEDS_TWO_CPUS.contains(&name) => (name, ONE_CPU),
            (Flavour::Hypervisor, _)
                if pagetables == Pagetables::Off && PAGE_TABLE_ROWS.contains(&name) =>
            {
                (name, native)
            }
            (Flavour::Hypervisor, "smi-self") if WITHOUT_X2APIC.contains(&cpu) => {
                (name, SMI_NOT_TAKEN)
            }
            (Flavour::Hypervisor, "bar-over-ram") => (name, NO_MEMORY_BAR),
            (Flavour::Hypervisor, _) if KNOWN_GAPS.iter().any(|(n, _)| *n == name) => {
                let gap = KNOWN_GAPS.iter().find(|(n, _)| *n == name);
                (name, gap.map_or(hv, |(_, verdict)| verdict))
            }
            (Flavour::Native, _) => (name, native),
            (Flavour::Hypervisor, _) => (name, hv),
        })
        .collect()
}

/// Checks the suite's output in `lines` under the default `pagetables = locked`; returns
/// failures and figures.
pub fn check(
    lines: &[String],
    flavour: Flavour,
    cpu: &str,
    cpus: u32,
) -> (Vec<String>, Vec<(String, u64)>) {
    check_under(lines, flavour, cpu, cpus, Pagetables::Locked)
}

/// The kernel's line when the hypervisor's policy leaves its page tables unlocked.
pub const NOT_LOCKED_BY_POLICY: &str =
    "[kernel] page tables: not locked (hypervisor policy pagetables = off)";

/// The `hv-bochs-pagetables-off` session's check (Bochs tigerlake, one CPU): the kernel's line
/// saying its tables are not locked, `pingpong` without a VM exit (no CR3 load is checked), and
/// the suite's table under `pagetables = off`.
pub fn pagetables_off(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    let (mut failures, mut figures) =
        check_under(lines, Flavour::Hypervisor, "tigerlake", 1, Pagetables::Off);
    if !lines.iter().any(|l| l.contains(NOT_LOCKED_BY_POLICY)) {
        failures.push(format!("no `{NOT_LOCKED_BY_POLICY}` line"));
    }
    let pingpong = shell::section(lines, "run pingpong");
    match shell::check_exit_delta(
        pingpong,
        "pingpong",
        "yields",
        Flavour::Hypervisor,
        Exits::None,
    ) {
        Ok(Some((_, delta))) => figures.push(("pingpong_delta".to_string(), delta)),
        Ok(None) => {}
        Err(error) => failures.push(error),
    }
    (failures, figures)
}

/// [`check`] under the hypervisor policy `pagetables`.
pub fn check_under(
    lines: &[String],
    flavour: Flavour,
    cpu: &str,
    cpus: u32,
    pagetables: Pagetables,
) -> (Vec<String>, Vec<(String, u64)>) {
    let (start, end) = match suite_bounds(lines) {
        Ok(bounds) => bounds,
        Err(failure) => return (vec![failure], Vec::new()),
    };
    let suite = &lines[start..end];
    let want = expected_under(flavour, cpu, cpus, pagetables);
    let mut failures = check_rows(suite, &want);
    let mut figures = Vec::new();
    let count = |prefix: &str| want.iter().filter(|(_, v)| v.starts_with(prefix)).count() as u64;
    let blocked = count("BLOCKED");
    // A known gap carries the one audit record of its refused step.
    let unexpected = count("UNEXPECTED");
    // A race row leaves one record per lost round, which its detail line counts.
    let race_blocked = want
        .iter()
        .any(|&(name, verdict)| name == "grant-race" && verdict.starts_with("BLOCKED"));
    let race_extra = match (race_blocked, race_records(suite)) {
        (false, _) => 0,
        (true, Some(records)) => records.saturating_sub(1),
        (true, None) => {
            failures.push("grant-race: no detail line with its rounds' outcomes".into());
            0
        }
    };
    let records = if flavour == Flavour::Hypervisor {
        blocked + unexpected + race_extra
    } else {
        0
    };
    let unexpected_text = match unexpected {
        0 => String::new(),
        n => format!(", {n} UNEXPECTED"),
    };
    let summary = format!(
        "attacks: {blocked} blocked, {} succeeded, {} n/a{unexpected_text}; audit records +{records}",
        count("SUCCEEDED"),
        count("N/A")
    );
    if !lines[end].trim_end().ends_with(&summary) {
        failures.push(format!(
            "run attacks: got `{}`, want `{summary}`",
            lines[end].trim_end()
        ));
    }
    let delta = audit_delta(&lines[end]);
    // With several CPUs the background spin prints while the hypervisor logs from another vCPU
    // on the same UART, so a record's line can be split by a spin line: each piece is counted
    // once if it still shows `[hv] audit #` or ` by rule `, and at least one per record must.
    let audited = match cpus {
        1 => suite.iter().filter(|l| l.contains(AUDIT)).count() as u64,
        _ => suite
            .iter()
            .filter(|l| l.contains(AUDIT) || l.contains(AUDIT_RULE))
            .count() as u64,
    };
    if (cpus == 1 && audited != records) || audited < records {
        failures.push(format!(
            "run attacks: {audited} `{AUDIT}` lines, want {records}"
        ));
    }
    let spin_after = check_liveness(&lines[end + 1..], &mut failures);
    figures.extend([
        ("attacks_blocked".to_string(), blocked),
        ("attacks_succeeded".to_string(), count("SUCCEEDED")),
        ("attacks_na".to_string(), count("N/A")),
        ("attacks_audit_delta".to_string(), delta),
        ("attacks_audit_lines".to_string(), audited),
        ("attacks_spin_lines_after".to_string(), spin_after),
    ]);
    (failures, figures)
}

/// Where the suite's table runs: from its header line to its summary line (an error naming the
/// missing one).
fn suite_bounds(lines: &[String]) -> Result<(usize, usize), String> {
    let Some(start) = lines.iter().position(|l| l.contains(HEADER)) else {
        return Err(format!("run attacks: no `{HEADER}` line"));
    };
    lines[start..]
        .iter()
        .position(|l| l.contains(SUMMARY) && l.contains("; audit records +"))
        .map(|i| (start, start + i))
        .ok_or_else(|| "run attacks: no summary line".into())
}

/// Failures of the table's rows against `want` (name, verdict): a row count or a verdict
/// that differs, a row missing.
fn check_rows(suite: &[String], want: &[(&str, &str)]) -> Vec<String> {
    let mut failures = Vec::new();
    let rows: Vec<(&str, &str)> = suite
        .iter()
        .filter_map(|l| {
            let row = &l[l.find(ROW)? + ROW.len()..];
            let mut cells = row.split(" | ");
            let name = cells.next()?;
            Some((name, cells.nth(1)?.trim_end()))
        })
        .collect();
    if rows.len() != want.len() {
        failures.push(format!(
            "run attacks: {} rows, want {}",
            rows.len(),
            want.len()
        ));
    }
    for (name, verdict) in want {
        match rows.iter().find(|(n, _)| n == name) {
            Some((_, got)) if got == verdict => {}
            Some((_, got)) => {
                failures.push(format!("attack {name}: got `{got}`, want `{verdict}`"))
            }
            None => failures.push(format!("attack {name}: no row")),
        }
    }
    failures
}

/// The summary line's `audit records +N` (u64::MAX if missing: never a figure that passes).
fn audit_delta(summary: &str) -> u64 {
    let delta = summary.split_once("audit records +");
    delta
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// After the suite the system must still live: the background spin prints and `hello` runs.
/// Returns the spin lines seen.
fn check_liveness(after: &[String], failures: &mut Vec<String>) -> u64 {
    let spin_after = after.iter().filter(|l| is_spin_line(l)).count() as u64;
    if spin_after == 0 {
        failures.push(format!("liveness: no `{SPIN_NAME} N` line after the suite"));
    }
    if !after
        .iter()
        .any(|l| l.contains("[sh] hello exited with code 0"))
    {
        failures.push("liveness: no `[sh] hello exited with code 0` after the suite".into());
    }
    spin_after
}

/// The audit records `grant-race` left: its detail line's `R refused (...), F writer faults`.
fn race_records(suite: &[String]) -> Option<u64> {
    let line = suite.iter().find(|l| l.contains("detail: grant-race: "))?;
    let (_, outcomes) = line.split_once("): ")?;
    let refused = outcomes
        .split_once(" refused")?
        .0
        .trim()
        .parse::<u64>()
        .ok()?;
    let (_, rest) = outcomes.split_once("), ")?;
    let faults = rest
        .split_once(" writer faults")?
        .0
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(refused + faults)
}

fn is_spin_line(line: &str) -> bool {
    let line = line.trim_start_matches(PROMPT).trim();
    line.split_once(' ')
        .is_some_and(|(name, n)| name == SPIN_NAME && n.parse::<u32>().is_ok())
}

#[cfg(test)]
#[path = "attacks_tests.rs"]
mod tests;
