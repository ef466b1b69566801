//! The shell sessions the boot tests type into the guest console, and the checks on what came
//! back. The replies are the contract with guest-user/ (sh and the programs) and guest-kernel/
//! (the `killed:` lines, the init exit line). Checks are pure functions over the serial lines.

use super::session::{Session, Step};

const PROMPT: &str = "sh> ";
/// What `run` prints when a foreground program ends.
const EXITED: &str = " exited with code ";
/// The header `ps` prints (guest-user/src/bin/sh.rs).
pub const PS_HEADER: &str = "PID PPID CPU STATE TICKS NAME";
/// Columns of a `ps` row.
const PS_COLUMNS: usize = 6;
/// Spin lines per process (`spin NAME N`, ~50 ms of CPU work each).
const SPIN_LAST: &str = "29";

/// Which figures the machine can show: under Rampart the exit counts, natively `n/a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Native,
    Hypervisor,
}

/// The shell session: every program, then `exit` (init exits 0, the kernel prints PASS).
/// Each step waits for the program's exit line and the next prompt before the next is typed.
pub const FULL: Session = Session {
    steps: &[
        BOOT,
        HELLO,
        PS,
        HELP,
        RUN_UNKNOWN,
        FAULTY_NULL,
        FAULTY_GP,
        FAULTY_UD,
        FAULTY_DIV,
        FAULTY_TEXT,
        FAULTY_VMCALL,
        VMXINSN,
        SLEEPER,
        BADPTR,
        SYSLOOP,
        PINGPONG,
        SPIN_A,
        SPIN_B,
        SPINS_DONE,
        super::fuzz::FUZZ_STEP,
        super::attacks::SPIN_STEP,
        super::attacks::RUN_STEP,
        super::attacks::HELLO_STEP,
        super::attacks::SPIN_DONE_STEP,
        EXIT,
    ],
};

/// [`FULL`] for machines with several CPUs: also `ps` while the two spins run, so
/// [`spins_on_two_cpus`] can see them on different CPUs.
pub const FULL_SMP: Session = Session {
    steps: &[
        BOOT,
        HELLO,
        PS,
        HELP,
        RUN_UNKNOWN,
        FAULTY_NULL,
        FAULTY_GP,
        FAULTY_UD,
        FAULTY_DIV,
        FAULTY_TEXT,
        FAULTY_VMCALL,
        VMXINSN,
        SLEEPER,
        BADPTR,
        SYSLOOP,
        PINGPONG,
        SPIN_A,
        SPIN_B,
        PS_SPINS,
        SPINS_DONE,
        super::fuzz::FUZZ_SMP_STEP,
        super::attacks::SPIN_STEP,
        super::attacks::RUN_STEP,
        super::attacks::HELLO_STEP,
        super::attacks::SPIN_DONE_STEP,
        EXIT,
    ],
};

/// A step typing `$send` and waiting for `[sh] $program exited with code` and the next prompt.
macro_rules! run {
    ($label:literal, $send:literal, $program:literal) => {
        Step {
            label: $label,
            send: Some($send),
            expect: &[
                &[concat!("[sh] ", $program, " exited with code")],
                &[PROMPT],
            ],
        }
    };
}

const BOOT: Step = Step {
    label: "boot-to-prompt",
    send: None,
    expect: &[&["[kernel] ready"], &["[init] starting sh"], &[PROMPT]],
};
const HELLO: Step = run!("hello", "run hello", "hello");
const PS: Step = Step {
    label: "ps",
    send: Some("ps"),
    expect: &[&[PS_HEADER], &[PROMPT]],
};
/// `help`: the commands, then every initrd program with its description (read by the kernel
/// from the program's ELF; checked in [`check_full`]).
const HELP: Step = Step {
    label: "help",
    send: Some("help"),
    expect: &[&[PROGRAMS_HEADER], &[PROMPT]],
};
const PROGRAMS_HEADER: &str = "programs (run NAME [ARGS]):";
/// `run` of a name the initrd lacks: ENOENT, then the names that exist.
const RUN_UNKNOWN: Step = Step {
    label: "run-unknown",
    send: Some("run nosuch"),
    expect: &[&["sh: run nosuch: ENOENT"], &[PROGRAMS_ARE], &[PROMPT]],
};
const PROGRAMS_ARE: &str = "sh: the programs are:";
const FAULTY_NULL: Step = run!("faulty-null", "run faulty null", "faulty");
const FAULTY_GP: Step = run!("faulty-gp", "run faulty gp", "faulty");
const FAULTY_UD: Step = run!("faulty-ud", "run faulty ud", "faulty");
const FAULTY_DIV: Step = run!("faulty-div", "run faulty div", "faulty");
const FAULTY_TEXT: Step = run!("faulty-text", "run faulty text", "faulty");
const FAULTY_VMCALL: Step = run!("faulty-vmcall", "run faulty vmcall", "faulty");
const VMXINSN: Step = run!("vmxinsn", "run vmxinsn", "vmxinsn");
const SLEEPER: Step = run!("sleeper", "run sleeper 500", "sleeper");
const BADPTR: Step = run!("badptr", "run badptr", "badptr");
const SYSLOOP: Step = run!("sysloop", "run sysloop", "sysloop");
const PINGPONG: Step = run!("pingpong", "run pingpong", "pingpong");
// Last before `exit`: the spins' output (and the kernel's lines about their exits) runs on while
// commands are typed, which would split the typed echo of a later command.
const SPIN_A: Step = Step {
    label: "spin-a",
    send: Some("run spin A 30 &"),
    expect: &[&["[sh] started spin as pid"], &[PROMPT]],
};
const SPIN_B: Step = Step {
    label: "spin-b",
    send: Some("run spin B 30 &"),
    expect: &[&["[sh] started spin as pid"], &[PROMPT]],
};
/// `ps` while both spins run (its echo may be split by their lines; its rows are whole).
const PS_SPINS: Step = Step {
    label: "ps-spins",
    send: Some("ps"),
    expect: &[&[PS_HEADER], &[PROMPT]],
};
const SPINS_DONE: Step = Step {
    label: "spins-done",
    send: None,
    expect: &[&["A 29", "B 29"]],
};
const EXIT: Step = Step {
    label: "exit",
    send: Some("exit"),
    expect: &[&["[init] sh exited with code"]],
};

/// For other boots that reach the shell: just leave it.
pub const EXIT_ONLY: Session = Session {
    steps: &[
        Step {
            label: "boot-to-prompt",
            send: None,
            expect: &[&["[init] starting sh"], &[PROMPT]],
        },
        Step {
            label: "exit",
            send: Some("exit"),
            expect: &[&["[init] sh exited with code"]],
        },
    ],
};

/// `pingpong` (its exits per switch) and the attack suite with its liveness steps (a
/// background spin, `hello` after it).
pub const PINGPONG_AND_ATTACKS: Session = Session {
    steps: &[
        BOOT,
        PINGPONG,
        super::attacks::SPIN_STEP,
        super::attacks::RUN_STEP,
        super::attacks::HELLO_STEP,
        super::attacks::SPIN_DONE_STEP,
        EXIT,
    ],
};

/// The `killed:` description the kernel prints for each `faulty` mode.
const FAULTS: [(&str, &str); 6] = [
    ("null", "page fault (write to 0x0)"),
    ("gp", "general protection fault"),
    ("ud", "invalid opcode"),
    ("div", "divide error"),
    ("text", "page fault (write to 0x4"),
    // VMCALL from ring 3: #UD natively (VMX off) and under Rampart (hypercalls are ring 0 only).
    ("vmcall", "invalid opcode"),
];

/// Checks the replies of a [`FULL`] session in `lines`; returns failures and figures.
pub fn check_full(lines: &[String], flavour: Flavour) -> (Vec<String>, Vec<(String, u64)>) {
    let mut failures = Vec::new();
    let mut figures = Vec::new();
    let mut fail = |text: String| failures.push(text);

    let hello = section(lines, "run hello");
    if !hello.iter().any(|l| l.contains("Hello from ring 3! pid=")) {
        fail("run hello: no `Hello from ring 3! pid=...` line".into());
    }
    expect_exit(hello, "hello", 0, &mut fail);

    match check_ps(section(lines, "ps")) {
        Ok(rows) => figures.push(("ps_rows".into(), rows)),
        Err(err) => fail(err),
    }

    match check_programs(section(lines, "help"), section(lines, "run nosuch")) {
        Ok(listed) => figures.push(("help_programs".into(), listed)),
        Err(err) => fail(err),
    }

    match spin_switches(lines) {
        Ok(switches) => figures.push(("spin_switches".into(), switches)),
        Err(err) => fail(err),
    }

    check_faults(lines, &mut fail);

    super::vmxinsn::check(section(lines, "run vmxinsn"), flavour, &mut fail);

    let sleeper = section(lines, "run sleeper 500");
    match value_after(sleeper, "sleeper: slept ") {
        Some(ms) if (500..1500).contains(&ms) => figures.push(("sleeper_ms".into(), ms as u64)),
        Some(ms) => fail(format!("run sleeper 500: slept {ms} ms, want 500..1500")),
        None => fail("run sleeper 500: no `sleeper: slept N ms` line".into()),
    }
    expect_exit(sleeper, "sleeper", 0, &mut fail);

    let badptr = section(lines, "run badptr");
    match value_after(badptr, "badptr: all ") {
        Some(cases) if cases > 0 => figures.push(("badptr_cases".into(), cases as u64)),
        _ => {
            let bad: Vec<&str> = badptr
                .iter()
                .filter(|l| l.contains("expected") || l.contains("failed"))
                .map(String::as_str)
                .collect();
            fail(format!(
                "run badptr: no `badptr: all N cases ok` line; {}",
                bad.join("; ")
            ));
        }
    }
    expect_exit(badptr, "badptr", 0, &mut fail);

    check_exit_free(lines, flavour, &mut figures, &mut fail);

    if !lines
        .iter()
        .any(|l| l.contains("[init] sh exited with code 0"))
    {
        fail("exit: no `[init] sh exited with code 0` line".into());
    }
    (failures, figures)
}

/// Each `run faulty MODE`: the kernel's `killed:` line for that fault, exit code -11.
fn check_faults(lines: &[String], fail: &mut impl FnMut(String)) {
    for (mode, what) in FAULTS {
        let command = format!("run faulty {mode}");
        let part = section(lines, &command);
        let killed = format!("(faulty) killed: {what}");
        if !part
            .iter()
            .any(|l| l.contains("[kernel] pid ") && l.contains(&killed))
        {
            fail(format!("{command}: no `[kernel] pid N {killed}...` line"));
        }
        if part.iter().any(|l| l.contains("faulty: survived")) {
            fail(format!("{command}: the program survived its fault"));
        }
        expect_exit(part, "faulty", -11, fail);
    }
}

/// `run sysloop` and `run pingpong`: no VM exit during them under the hypervisor.
fn check_exit_free(
    lines: &[String],
    flavour: Flavour,
    figures: &mut Vec<(String, u64)>,
    fail: &mut impl FnMut(String),
) {
    for (program, what, exits) in [
        ("sysloop", "syscalls", Exits::None),
        ("pingpong", "yields", Exits::None),
    ] {
        let part = section(lines, &format!("run {program}"));
        match check_exit_delta(part, program, what, flavour, exits) {
            Ok(Some((before, delta))) => {
                figures.push((format!("{program}_exits_before"), before));
                figures.push((format!("{program}_delta"), delta));
            }
            Ok(None) => {}
            Err(err) => fail(err),
        }
        expect_exit(part, program, 0, fail);
    }
}

/// `help` must list every program packed into the initrd with a description, and `run nosuch`
/// must name them all; returns how many `help` listed.
pub fn check_programs(help: &[String], unknown: &[String]) -> Result<u64, String> {
    let listing: Vec<&String> = help
        .iter()
        .skip_while(|l| !l.contains(PROGRAMS_HEADER))
        .skip(1)
        .collect();
    for program in crate::initrd::PROGRAMS {
        let row = listing
            .iter()
            .find(|l| l.split_whitespace().next() == Some(program))
            .ok_or_else(|| format!("help: no row for the initrd program `{program}`"))?;
        if row.split_whitespace().nth(1).is_none() {
            return Err(format!("help: `{program}` has no description"));
        }
    }
    let names = unknown
        .iter()
        .find_map(|l| l.split_once(PROGRAMS_ARE).map(|(_, names)| names))
        .ok_or_else(|| format!("run nosuch: no `{PROGRAMS_ARE}` line"))?;
    let names: Vec<&str> = names.split_whitespace().collect();
    if let Some(missing) = crate::initrd::PROGRAMS.iter().find(|p| !names.contains(p)) {
        return Err(format!(
            "run nosuch: `{missing}` not among the programs named"
        ));
    }
    let listed = listing.iter().take_while(|l| l.starts_with("  ")).count();
    Ok(listed as u64)
}

/// The lines a command produced: after the prompt line that typed it, up to the next prompt.
pub fn section<'a>(lines: &'a [String], command: &str) -> &'a [String] {
    let typed = format!("{PROMPT}{command}");
    let Some(start) = lines.iter().position(|l| l.trim_end() == typed) else {
        return &[];
    };
    let rest = &lines[start + 1..];
    let end = rest
        .iter()
        .position(|l| l.starts_with(PROMPT))
        .unwrap_or(rest.len());
    &rest[..end]
}

pub(super) fn expect_exit(
    part: &[String],
    program: &str,
    code: i64,
    fail: &mut impl FnMut(String),
) {
    let want = format!("[sh] {program}{EXITED}{code}");
    if !part.iter().any(|l| l.trim_end().ends_with(&want)) {
        let got = part
            .iter()
            .find(|l| l.contains(&format!("[sh] {program}{EXITED}")))
            .map_or("no exit line".to_string(), |l| format!("`{l}`"));
        fail(format!("run {program}: want `{want}`, got {got}"));
    }
}

/// The integer right after `prefix` on the first line containing it.
fn value_after(lines: &[String], prefix: &str) -> Option<i64> {
    lines.iter().find_map(|l| {
        let rest = &l[l.find(prefix)? + prefix.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    })
}

/// The header and the `init` (pid 1) and `sh` rows; returns the number of rows.
fn check_ps(part: &[String]) -> Result<u64, String> {
    let header = part
        .iter()
        .position(|l| l.trim() == PS_HEADER)
        .ok_or(format!("ps: no `{PS_HEADER}` header"))?;
    let rows: Vec<Vec<&str>> = part[header + 1..]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| {
            w.len() == PS_COLUMNS && w[0].parse::<u64>().is_ok() && w[2].parse::<u32>().is_ok()
        })
        .collect();
    if !rows.iter().any(|w| w[0] == "1" && w[5] == "init") {
        return Err("ps: no row `1 ... init`".into());
    }
    if !rows.iter().any(|w| w[5] == "sh" && w[1] == "1") {
        return Err("ps: no `sh` row with parent 1".into());
    }
    Ok(rows.len() as u64)
}

/// The `ps` typed while the A and B spins run (the last `ps` before `A 29`) must show two
/// `spin` rows on different CPUs: they ran in parallel, not only interleaved.
pub fn spins_on_two_cpus(lines: &[String]) -> (Vec<String>, Vec<(String, u64)>) {
    let end = lines
        .iter()
        .position(|l| l.trim_start_matches(PROMPT).trim() == format!("A {SPIN_LAST}"))
        .unwrap_or(lines.len());
    let Some(header) = lines[..end].iter().rposition(|l| l.trim() == PS_HEADER) else {
        return (
            vec![format!("ps during the spins: no `{PS_HEADER}` header")],
            Vec::new(),
        );
    };
    let cpus: Vec<u32> = lines[header + 1..end]
        .iter()
        .take_while(|l| !l.starts_with(PROMPT))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == PS_COLUMNS && w[5] == "spin")
        .filter_map(|w| w[2].parse().ok())
        .collect();
    match cpus.as_slice() {
        [a, b] if a != b => (Vec::new(), vec![("spin_cpus_distinct".to_string(), 1)]),
        [a, b] => (
            vec![format!("ps during the spins: both spins on CPU {a} ({b})")],
            Vec::new(),
        ),
        other => (
            vec![format!(
                "ps during the spins: {} spin rows, want 2",
                other.len()
            )],
            Vec::new(),
        ),
    }
}

/// How often the output switched between the A and B spins: at least 2 (A..B..A) proves that
/// neither ran to its end alone.
pub fn spin_switches(lines: &[String]) -> Result<u64, String> {
    let labels: Vec<char> = lines
        .iter()
        .filter_map(|l| spin_label(l.trim_start_matches(PROMPT).trim()))
        .collect();
    for (name, last) in [('A', SPIN_LAST), ('B', SPIN_LAST)] {
        let done = format!("{name} {last}");
        if !lines
            .iter()
            .any(|l| l.trim_start_matches(PROMPT).trim() == done)
        {
            return Err(format!("spin: no `{done}` line"));
        }
    }
    let switches = labels.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    if switches < 2 {
        let order: String = labels.iter().collect();
        return Err(format!(
            "spin: A and B did not interleave (order {order}): no preemption seen"
        ));
    }
    Ok(switches)
}

fn spin_label(line: &str) -> Option<char> {
    let (name, number) = line.split_once(' ')?;
    let label = match name {
        "A" => 'A',
        "B" => 'B',
        _ => return None,
    };
    number.parse::<u32>().ok().map(|_| label)
}

pub use super::exit_delta::{check_exit_delta, Exits};

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
