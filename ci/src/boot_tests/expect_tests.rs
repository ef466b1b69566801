use super::*;

const HV: Expectations = Expectations {
    ordered: &[&["[fw] kernel ", "sha256="], &["[kernel] ready"]],
    absent: &["panic"],
    pass: true,
    result_words: &["mode=hv", "hypervisor=rampart"],
    checks: &[Check::Ticks, Check::Exits],
};

fn boot(text: &str) -> Boot {
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let outcome = match lines.iter().find_map(|line| ResultLine::parse(line)) {
        Some(result) => Outcome::Verdict(result),
        None => Outcome::Timeout,
    };
    Boot {
        outcome,
        lines,
        seconds: 1.0,
        firmware_seconds: None,
    }
}

const GOOD: &str = "[fw] kernel \\rampart\\kernel.elf: 4096 bytes sha256=ab\n\
    [kernel] timer ticks: 7\n[kernel] ready\n[hv] exits: total=12 CPUID=8 VMCALL=4\n\
    RAMPART-RESULT: PASS mode=hv hypervisor=rampart ticks=9\n";

#[test]
fn a_good_boot_passes_with_figures() {
    let eval = evaluate(&HV, &boot(GOOD));
    assert!(eval.failures.is_empty(), "{:?}", eval.failures);
    assert!(eval.figures.contains(&("ticks".into(), 7)));
    assert!(eval.figures.contains(&("result_ticks".into(), 9)));
    assert!(eval.figures.contains(&("exits.VMCALL".into(), 4)));
}

#[test]
fn reports_missing_and_out_of_order_lines() {
    let text = "[kernel] ready\n[fw] kernel x sha256=1\n[kernel] timer ticks: 1\n\
        [hv] exits: total=3 CPUID=1 VMCALL=2\nRAMPART-RESULT: PASS mode=hv hypervisor=rampart ticks=1\n";
    let eval = evaluate(&HV, &boot(text));
    assert_eq!(eval.failures.len(), 1, "{:?}", eval.failures);
    assert!(eval.failures[0].contains("out of order"));
    let eval = evaluate(&HV, &boot(&text.replace("[kernel] ready\n", "")));
    assert!(eval.failures[0].contains("missing line `[kernel] ready`"));
}

#[test]
fn checks_values() {
    let low = GOOD.replace("VMCALL=4", "VMCALL=1");
    assert!(evaluate(&HV, &boot(&low)).failures[0].contains("VMCALL>=2"));
    let zero = GOOD.replace("timer ticks: 7", "timer ticks: 0");
    assert!(evaluate(&HV, &boot(&zero)).failures[0].contains("never fired"));
    let panic = GOOD.replace("[kernel] ready", "[kernel] ready panic");
    assert!(evaluate(&HV, &boot(&panic)).failures[0].contains("unexpected `panic`"));
}

#[test]
fn checks_the_verdict_and_reports_timeouts() {
    let native = GOOD.replace("mode=hv hypervisor=rampart", "mode=native hypervisor=none");
    assert!(evaluate(&HV, &boot(&native)).failures[0].contains("result line"));
    let failed = GOOD.replace("PASS", "FAIL");
    assert!(evaluate(&HV, &boot(&failed)).failures[0].contains("got `RAMPART-RESULT: FAIL"));
    let cut = GOOD.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(evaluate(&HV, &boot(&cut)).failures[0].starts_with("timeout"));
}

#[test]
fn matches_parts_in_order() {
    assert!(line_matches(
        "[fw] kernel a: sha256=1",
        &["[fw] kernel", "sha256="]
    ));
    assert!(!line_matches(
        "sha256= [fw] kernel",
        &["[fw] kernel", "sha256="]
    ));
}

#[test]
fn parses_count_lists() {
    let counts = parse_counts("total=12 CPUID=8 VMCALL=4").unwrap();
    assert_eq!(counts[0], ("total".to_string(), 12));
    assert_eq!(parse_counts("total=x"), None);
    assert_eq!(parse_counts("total"), None);
}
