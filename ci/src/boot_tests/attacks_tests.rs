use super::*;

/// A transcript of the suite as the kernel prints it, with `verdicts` in table order.
fn transcript(verdicts: &[(&str, &str)], audit_lines: usize, delta: usize) -> Vec<String> {
    let mut lines = vec![
        "sh> run attacks".to_string(),
        format!("[kernel] {HEADER}, under Rampart"),
    ];
    let mut audits = 0;
    for (name, verdict) in verdicts {
        if (verdict.starts_with("BLOCKED") || verdict.starts_with("UNEXPECTED"))
            && audits < audit_lines
        {
            audits += 1;
            lines.push("[hv] audit #0: blocked write by rule kernel-text at RIP=0x1".into());
        }
        if *name == "grant-race" && verdict.starts_with("BLOCKED") {
            lines.push("[kernel] attacks: detail: grant-race: 96 rounds, writes 0..900 cycles after the go (a grant takes 600): 1 refused (written before the compare), 0 writer faults, won in round None".into());
        }
        lines.push(format!("[kernel] attack: {name} | tried | {verdict}"));
        lines.push("S 3".into());
    }
    let count = |p: &str| verdicts.iter().filter(|(_, v)| v.starts_with(p)).count();
    let unexpected = match count("UNEXPECTED") {
        0 => String::new(),
        n => format!(", {n} UNEXPECTED"),
    };
    lines.push(format!(
        "[kernel] attacks: {} blocked, {} succeeded, {} n/a{unexpected}; audit records +{delta}",
        count("BLOCKED"),
        count("SUCCEEDED"),
        count("N/A")
    ));
    lines.extend(["S 4", "[sh] hello exited with code 0"].map(String::from));
    lines
}

#[test]
fn hv_table_passes_with_one_record_per_block() {
    let want = expected(Flavour::Hypervisor, "tigerlake", 4);
    let blocked = want
        .iter()
        .filter(|(_, v)| v.starts_with("BLOCKED"))
        .count();
    assert_eq!(blocked, 36);
    assert!(want.contains(&("bar-over-ram", "N/A (no 32-bit memory BAR)")));
    assert!(want.contains(&("ide-dma", "BLOCKED (dma)")));
    assert!(want.contains(&("forged-cr3", "BLOCKED (cr3-load)")));
    assert!(want.contains(&("idt-remap", "BLOCKED (page-table)")));
    let (failures, figures) = check(
        &transcript(&want, 36, 36),
        Flavour::Hypervisor,
        "tigerlake",
        4,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(figures.contains(&("attacks_audit_delta".into(), 36)));
}

#[test]
fn models_without_smep_and_native_differ() {
    let sandy = expected(Flavour::Hypervisor, "corei7_sandy_bridge_2600k", 1);
    assert!(sandy.contains(&("cr4-smep", "N/A (CPU lacks SMEP)")));
    let native = expected(Flavour::Native, "", 1);
    assert!(native.contains(&("cr4-smep", "SUCCEEDED")));
    assert!(native.contains(&("vmcall-revoke", "N/A (no hypervisor)")));
    assert!(native.contains(&("init-sipi-wake", "N/A (one CPU)")));
    assert!(native.contains(&("stale-tlb", "N/A (no hypervisor)")));
    assert!(native.contains(&("ide-dma", "N/A (no PCI IDE controller)")));
    let tiger_one = expected(Flavour::Hypervisor, "tigerlake", 1);
    assert!(tiger_one.contains(&("stale-tlb", "N/A (one CPU)")));
    assert!(tiger_one.contains(&("apm-smi", "BLOCKED (smi)")));
    assert!(sandy.contains(&("smi-self", "N/A (no marker written)")));
    let haswell = expected(Flavour::Hypervisor, "corei7_haswell_4770", 1);
    assert!(haswell.contains(&("smi-self", "BLOCKED (ipi-delivery)")));
    let native_smp = expected(Flavour::Native, "", 4);
    assert!(native_smp.contains(&("init-sipi-wake", "SUCCEEDED")));
    assert!(native_smp.contains(&("stale-tlb", "N/A (no hypervisor)")));
    let (failures, _) = check(&transcript(&native, 0, 0), Flavour::Native, "", 1);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn wrong_rows_counts_and_liveness_fail() {
    let mut want = expected(Flavour::Hypervisor, "tigerlake", 4);
    want[0].1 = "SUCCEEDED";
    let mut lines = transcript(&want, 28, 28);
    let (failures, _) = check(&lines, Flavour::Hypervisor, "tigerlake", 4);
    assert!(failures
        .iter()
        .any(|f| f.contains("attack text-write: got `SUCCEEDED`")));
    assert!(failures.iter().any(|f| f.starts_with("run attacks: got `")));
    lines.truncate(lines.len() - 2);
    let (failures, _) = check(&lines, Flavour::Hypervisor, "tigerlake", 4);
    assert!(failures.iter().any(|f| f.starts_with("liveness: no `S N`")));
}

#[test]
fn the_race_row_adds_one_record_per_lost_round() {
    let want = expected(Flavour::Hypervisor, "tigerlake", 2);
    // 40 refused rounds and 56 writer faults: 95 records more than one per blocked row.
    let transcript_with = |extra_audit_lines: usize| {
        let mut lines = transcript(&want, 36, 36 + 95);
        let detail = lines
            .iter()
            .position(|l| l.contains("detail: grant-race"))
            .unwrap();
        lines[detail] = lines[detail]
            .replace(": 1 refused", ": 40 refused")
            .replace(", 0 writer", ", 56 writer");
        let audit = "[hv] audit #1: blocked write by rule w^x-no-write at RIP=0x1".to_string();
        lines.splice(
            detail..detail,
            std::iter::repeat_n(audit, extra_audit_lines),
        );
        lines
    };
    let (failures, _) = check(&transcript_with(95), Flavour::Hypervisor, "tigerlake", 2);
    assert!(failures.is_empty(), "{failures:?}");
    let (failures, _) = check(&transcript_with(0), Flavour::Hypervisor, "tigerlake", 2);
    assert!(
        failures.iter().any(|f| f.contains("lines, want 131")),
        "95 audit lines missing must fail: {failures:?}"
    );
    let mut no_detail = transcript(&want, 36, 36);
    no_detail.retain(|l| !l.contains("detail: grant-race"));
    let (failures, _) = check(&no_detail, Flavour::Hypervisor, "tigerlake", 2);
    assert!(failures
        .iter()
        .any(|f| f.starts_with("grant-race: no detail line")));
}

#[test]
fn split_audit_lines_count_on_several_cpus() {
    let want = expected(Flavour::Hypervisor, "tigerlake", 2);
    let mut lines = transcript(&want, 36, 36);
    let at = lines.iter().position(|l| l.starts_with(AUDIT)).unwrap();
    let whole = lines[at].clone();
    lines[at] = "[hv]S  au3di".into();
    lines.insert(
        at + 1,
        format!("t #0:{}", &whole[whole.find(" blocked").unwrap()..]),
    );
    let (failures, _) = check(&lines, Flavour::Hypervisor, "tigerlake", 2);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn pagetables_off_lets_the_page_table_rows_succeed() {
    let off = expected_under(Flavour::Hypervisor, "tigerlake", 1, Pagetables::Off);
    let locked = expected(Flavour::Hypervisor, "tigerlake", 1);
    for ((name, got), (_, default)) in off.iter().zip(&locked) {
        match PAGE_TABLE_ROWS.contains(name) {
            true if *name == "cr3-other-cpu" => assert_eq!(*got, "N/A (one CPU)"),
            true => assert_eq!(*got, "SUCCEEDED", "{name}"),
            false => assert_eq!(got, default, "{name}"),
        }
    }
    let native = expected(Flavour::Native, "", 2);
    assert!(PAGE_TABLE_ROWS
        .iter()
        .all(|row| native.contains(&(*row, "SUCCEEDED"))));
    let blocked = off.iter().filter(|(_, v)| v.starts_with("BLOCKED")).count();
    let mut lines = transcript(&off, blocked, blocked);
    let (failures, _) = pagetables_off(&lines);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0], format!("no `{NOT_LOCKED_BY_POLICY}` line"));
    assert!(failures[1].contains("run pingpong: no `pingpong: ..."));
    let pingpong = |delta: u64| {
        [
            "sh> run pingpong".to_string(),
            format!(
                "pingpong: 1000 yields, exits before=9 after={} delta={delta}",
                9 + delta
            ),
            "[sh] pingpong exited with code 0".into(),
        ]
    };
    lines.splice(0..0, pingpong(0));
    lines.insert(0, NOT_LOCKED_BY_POLICY.to_string());
    let (failures, figures) = pagetables_off(&lines);
    assert!(failures.is_empty(), "{failures:?}");
    assert!(figures.contains(&("pingpong_delta".into(), 0)));
    lines.splice(1..4, pingpong(2000));
    let (failures, _) = pagetables_off(&lines);
    assert!(failures[0].contains("want `delta=0`"), "{failures:?}");
    // The locked table fails there.
    let (failures, _) = pagetables_off(&transcript(&locked, 27, 27));
    assert!(failures.iter().any(|f| f.contains("attack idt-remap")));
}
