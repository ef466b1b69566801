use super::*;
use crate::boot_tests::vmxinsn::{vmx_fault, VMX_FAULTS};

/// A transcript as the serial log shows it (prompt and typed echo on one line).
fn transcript(flavour: Flavour) -> Vec<String> {
    let exits = |program: &str, what: &str| match flavour {
        Flavour::Native => format!("{program}: 1000 {what}, exits n/a (no hypervisor)"),
        Flavour::Hypervisor => {
            format!("{program}: 1000 {what}, exits before=40 after=40 delta=0")
        }
    };
    let mut text = vec![
        "[kernel] ready".to_string(),
        "[init] starting sh".into(),
        "sh> run hello".into(),
        "Hello from ring 3! pid=2 args=\"\"".into(),
        "[sh] hello exited with code 0".into(),
        "sh> ps".into(),
        "PID PPID CPU STATE TICKS NAME".into(),
        "1 0 0 waiting 1 init".into(),
        "2 1 0 running 5 sh".into(),
        "sh> help".into(),
        "commands:".into(),
        "  help                 this text and the initrd's programs".into(),
        "programs (run NAME [ARGS]):".into(),
    ];
    for program in crate::initrd::PROGRAMS {
        text.push(format!("  {program:<10} does {program} things"));
    }
    text.push("sh> run nosuch".into());
    text.push("sh: run nosuch: ENOENT".into());
    text.push(format!(
        "sh: the programs are: {}",
        crate::initrd::PROGRAMS.join(" ")
    ));
    text.extend([
        "sh> run spin A 30 &".to_string(),
        "[sh] started spin as pid 3".into(),
        "A 0".into(),
        "sh> run spin B 30 &".into(),
    ]);
    for i in 0..30 {
        text.push(format!("A {i}"));
        text.push(format!("B {i}"));
    }
    for (mode, what) in FAULTS {
        text.push(format!("sh> run faulty {mode}"));
        text.push(format!(
            "[kernel] pid 9 (faulty) killed: {what}8 at rip=0x400123"
        ));
        text.push("[sh] faulty exited with code -11".into());
    }
    text.push("sh> run vmxinsn".into());
    for (name, what) in VMX_FAULTS {
        let what = vmx_fault(name, what, flavour);
        text.push(format!("vmxinsn: trying {name}"));
        text.push(format!(
            "[kernel] pid 12 (vmxinsn) killed: {what} at rip=0x400123"
        ));
        text.push(format!("vmxinsn: {name}: exit code -11"));
    }
    text.extend([
        "vmxinsn: all 15 killed".to_string(),
        "[sh] vmxinsn exited with code 0".into(),
    ]);
    text.extend([
        "sh> run sleeper 500".to_string(),
        "sleeper: slept 510 ms (asked 500)".into(),
        "[sh] sleeper exited with code 0".into(),
        "sh> run badptr".into(),
        "badptr: write null: EFAULT ok".into(),
        "badptr: all 17 cases ok".into(),
        "[sh] badptr exited with code 0".into(),
        "sh> run sysloop".into(),
        exits("sysloop", "syscalls"),
        "[sh] sysloop exited with code 0".into(),
        "sh> run pingpong".into(),
        exits("pingpong", "yields"),
        "[sh] pingpong exited with code 0".into(),
        "sh> exit".into(),
        "[init] sh exited with code 0".into(),
    ]);
    text
}

#[test]
fn a_good_session_passes_with_figures() {
    for flavour in [Flavour::Native, Flavour::Hypervisor] {
        let (failures, figures) = check_full(&transcript(flavour), flavour);
        assert!(failures.is_empty(), "{flavour:?}: {failures:?}");
        assert!(figures.contains(&("sleeper_ms".into(), 510)));
        assert!(figures.contains(&("badptr_cases".into(), 17)));
        assert!(figures.contains(&("ps_rows".into(), 2)));
        assert!(figures.contains(&("help_programs".into(), 14)));
        let deltas = figures
            .iter()
            .filter(|(k, _)| k.ends_with("_delta"))
            .count();
        assert_eq!(deltas, if flavour == Flavour::Native { 0 } else { 2 });
    }
}

#[test]
fn sections_end_at_the_next_prompt() {
    let lines = transcript(Flavour::Native);
    let hello = section(&lines, "run hello");
    assert_eq!(hello.len(), 2);
    assert!(section(&lines, "run nope").is_empty());
}

fn replaced(flavour: Flavour, from: &str, to: &str) -> Vec<String> {
    transcript(flavour)
        .into_iter()
        .map(|l| if l == from { to.to_string() } else { l })
        .collect()
}

#[test]
fn reports_each_broken_reply() {
    let hv = Flavour::Hypervisor;
    let cases = [
        (
            "sysloop: 1000 syscalls, exits before=40 after=40 delta=0",
            "sysloop: 1000 syscalls, exits before=40 after=43 delta=3",
            "want `delta=0`",
        ),
        (
            "sleeper: slept 510 ms (asked 500)",
            "sleeper: slept 120 ms (asked 500)",
            "slept 120 ms",
        ),
        ("2 1 0 running 5 sh", "2 1 0 running 5 shx", "no `sh` row"),
        (
            "badptr: all 17 cases ok",
            "badptr: read null: expected EFAULT, got success",
            "read null",
        ),
        (
            "[sh] hello exited with code 0",
            "[sh] hello exited with code 3",
            "got `[sh] hello exited with code 3`",
        ),
        (
            "  attacks    does attacks things",
            "  attacks",
            "`attacks` has no description",
        ),
        (
            "  fuzz       does fuzz things",
            "  fuzzy      does fuzz things",
            "no row for the initrd program `fuzz`",
        ),
        (
            "sh: the programs are: init sh hello spin sleeper faulty badptr sysloop pingpong bench true attacks vmxinsn fuzz",
            "sh: the programs are: init sh",
            "`hello` not among the programs named",
        ),
    ];
    for (from, to, want) in cases {
        let (failures, _) = check_full(&replaced(hv, from, to), hv);
        assert_eq!(failures.len(), 1, "{to}: {failures:?}");
        assert!(failures[0].contains(want), "{to}: {failures:?}");
    }
    let native_with_counts = transcript(hv);
    let (failures, _) = check_full(&native_with_counts, Flavour::Native);
    // sysloop and pingpong show counts; XSETBV faulted as on Bochs (#UD), not QEMU (#GP).
    assert_eq!(failures.len(), 3, "{failures:?}");
}

#[test]
fn spins_must_interleave() {
    let mut lines: Vec<String> = (0..30).map(|i| format!("A {i}")).collect();
    lines.extend((0..30).map(|i| format!("B {i}")));
    assert!(spin_switches(&lines)
        .unwrap_err()
        .contains("did not interleave"));
    lines.insert(3, "sh> B 0".into());
    assert_eq!(spin_switches(&lines), Ok(3));
    lines.retain(|l| l != "B 29");
    assert!(spin_switches(&lines).unwrap_err().contains("`B 29`"));
}

#[test]
fn killed_lines_are_required() {
    let lines: Vec<String> = transcript(Flavour::Native)
        .into_iter()
        .filter(|l| !l.contains("killed: divide error"))
        .collect();
    let (failures, _) = check_full(&lines, Flavour::Native);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("run faulty div"));
}

#[test]
fn spins_must_run_on_two_cpus() {
    let lines = |a: &str, b: &str| -> Vec<String> {
        [
            "sh> ps",
            "PID PPID CPU STATE TICKS NAME",
            "1 0 0 waiting 1 init",
            "2 1 0 running 3 sh",
            "A 3",
            a,
            b,
            "sh> B 4",
            "A 29",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect()
    };
    let (failures, figures) =
        spins_on_two_cpus(&lines("3 2 1 running 4 spin", "4 2 2 running 4 spin"));
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(figures, [("spin_cpus_distinct".to_string(), 1)]);
    let (failures, _) = spins_on_two_cpus(&lines("3 2 1 running 4 spin", "4 2 1 ready 4 spin"));
    assert!(failures[0].contains("both spins on CPU 1"), "{failures:?}");
    let (failures, _) = spins_on_two_cpus(&lines("3 2 1 running 4 spin", "B 3"));
    assert!(failures[0].contains("1 spin rows"), "{failures:?}");
}

#[test]
fn vmxinsn_wants_every_instruction_killed_with_its_fault() {
    let mut lines = transcript(Flavour::Hypervisor);
    let at = lines
        .iter()
        .position(|l| l.contains("(vmxinsn) killed: general protection fault"))
        .filter(|&at| lines[at - 1] == "vmxinsn: trying rdmsr")
        .unwrap();
    lines[at] = "[kernel] pid 12 (vmxinsn) killed: invalid opcode at rip=0x400123".into();
    let survived = lines
        .iter()
        .position(|l| l == "vmxinsn: invd: exit code -11")
        .unwrap();
    lines[survived] = "vmxinsn: invd survived".into();
    let (failures, _) = check_full(&lines, Flavour::Hypervisor);
    assert!(failures
        .iter()
        .any(|f| f == "run vmxinsn: rdmsr: want `general protection fault`, got `[kernel] pid 12 (vmxinsn) killed: invalid opcode at rip=0x400123`"));
    assert!(failures.iter().any(|f| f.contains("invd survived")));
    assert!(failures
        .iter()
        .any(|f| f.contains("no `vmxinsn: invd: exit code -11` line")));
}

#[test]
fn yields_allow_no_exit() {
    let hv = Flavour::Hypervisor;
    let line = |delta: u64| {
        vec![format!(
            "pingpong: 1000 yields, exits before=40 after={} delta={delta}",
            40 + delta
        )]
    };
    let check = |delta, exits| check_exit_delta(&line(delta), "pingpong", "yields", hv, exits);
    assert!(check(1, Exits::None)
        .unwrap_err()
        .contains("want `delta=0`"));
    assert_eq!(check(0, Exits::None), Ok(Some((40, 0))));
}
