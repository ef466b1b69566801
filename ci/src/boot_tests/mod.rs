//! Boot tests: each boots its own image in its own run directory under a time limit, `--jobs` at a
//! time (default: the machine's parallelism), and checks the serial console against the test's expectations.

pub mod attacks;
pub mod catalog;
pub mod exit_delta;
pub mod expect;
pub mod failures;
pub mod fuzz;
pub mod junit;
pub mod kpti;
pub mod partition;
pub mod progress;
pub mod report;
pub mod session;
pub mod shell;
pub mod vmxinsn;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::emulator::{self, Boot, Emulator, Input, Launch, DISK_IMAGE, SERIAL_LOG};
use crate::error::Result;
use crate::image::{self, Contents};
use crate::paths;
use catalog::{BootTest, Variant};
use progress::Progress;
use report::Record;

const SERIAL_TAIL_LINES: usize = 40;
/// Time limit of one shell step after the first (which includes the boot): Bochs is slow.
const BOCHS_STEP: Duration = Duration::from_secs(90);
const QEMU_STEP: Duration = Duration::from_secs(30);
const EMULATOR_TAIL_LINES: usize = 20;

/// Runs `tests`, `jobs` at a time (each emulator keeps one core busy:
/// `partition::jobs`); returns their records in catalog order.
pub fn run_all(tests: &[&'static BootTest], timeout: Option<Duration>, jobs: usize) -> Vec<Record> {
    let queue = Mutex::new(tests.iter().copied().collect::<VecDeque<_>>());
    let records = Mutex::new(Vec::new());
    let progress = Progress::new(tests.len(), std::io::stdout().is_terminal());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.clamp(1, tests.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    while let Some(test) = next(&queue) {
                        progress.started(test.name);
                        let record = run_one(test, timeout);
                        let text = format!("{}{}", record.line(), record.evidence);
                        progress.finished(test.name, record.passed(), &text);
                        records.lock().expect("records lock").push(record);
                    }
                })
            })
            .collect();
        while !workers.iter().all(|worker| worker.is_finished()) {
            std::thread::sleep(progress::REDRAW);
            progress.redraw();
        }
        progress.clear();
    });
    let mut records = records.into_inner().expect("records lock");
    records.sort_by_key(|record| tests.iter().position(|t| t.name == record.name));
    records
}

fn next(queue: &Mutex<VecDeque<&'static BootTest>>) -> Option<&'static BootTest> {
    queue.lock().expect("queue lock").pop_front()
}

/// Runs one test (booting it again once if the emulator never started); on failure its record
/// carries the evidence (the logs' tails).
fn run_one(test: &BootTest, timeout: Option<Duration>) -> Record {
    let first = attempt(test, timeout);
    if !never_started(&first, &paths::run_dir(test.name)) {
        return first;
    }
    // The emulator died before the firmware said anything (seen once in a dozen suites: Bochs
    // exited after its memory set-up, cause not established). That is the machine, not the
    // guest: boot once more, and say so in the test's figures.
    println!(
        "xtask: {}: the emulator stopped after {:.1} s with an empty console; booting it again once",
        test.name, first.seconds
    );
    let mut second = attempt(test, timeout);
    second.figures.push(("start_retries".to_string(), 1));
    second
}

/// A failed boot whose serial log stayed empty and that ended within seconds: the emulator
/// never got as far as the firmware (every image prints `[fw]` lines first).
fn never_started(record: &Record, run_dir: &Path) -> bool {
    const START_SECONDS: f64 = 5.0;
    let serial_bytes = std::fs::metadata(run_dir.join(SERIAL_LOG)).map_or(0, |m| m.len());
    !record.passed() && serial_bytes == 0 && record.seconds < START_SECONDS
}

/// One boot of `test`, evaluated.
fn attempt(test: &BootTest, timeout: Option<Duration>) -> Record {
    let start = Instant::now();
    let run_dir = paths::run_dir(test.name);
    let launch = Launch {
        emulator: test.emulator,
        cpu: test.cpu.to_string(),
        cpus: test.cpus,
        timeout: timeout.unwrap_or(test.emulator.default_timeout()),
        run_dir: run_dir.clone(),
        echo: false,
    };
    let mut record = Record::new(test.name, test.emulator.cpu_label(test.cpu), &launch);
    match boot(test, &launch) {
        Ok((boot, session)) => {
            let eval = expect::evaluate(&test.expect, &boot);
            record.firmware_seconds = boot.firmware_seconds;
            record.figures = eval.figures;
            record.failures = eval.failures;
            if let Some(report) = session {
                add_session(test, &boot, report, &mut record);
            }
        }
        Err(err) => record.failures.push(err.to_string()),
    }
    record.seconds = start.elapsed().as_secs_f64();
    if !record.passed() {
        record.evidence = evidence(&record, test.emulator.log_name(), &run_dir);
    }
    record
}

/// How long `soak-bochs` soaks (`cargo xtask soak --minutes M` for longer runs).
const SOAK_IN_CI: std::time::Duration = std::time::Duration::from_secs(120);

/// Boots the test's image, typing its console session if it has one; returns the boot and what
/// the session did.
fn boot(test: &BootTest, launch: &Launch) -> Result<(Boot, Option<session::Report>)> {
    emulator::fresh_run_dir(&launch.run_dir)?;
    let mut contents = Contents::from_build(test.mode)?;
    if let Variant::Production = test.variant {
        contents.firmware = image::read_artifact(&crate::paths::production_firmware_efi())?;
    }
    apply(test.variant, &mut contents);
    image::write(&launch.run_dir.join(DISK_IMAGE), &contents)?;
    match test.variant {
        Variant::Gdb => return crate::gdb::test::boot(launch, crate::gdb::test::Kind::Full),
        Variant::GdbKill => return crate::gdb::test::boot(launch, crate::gdb::test::Kind::Kill),
        Variant::GdbStepWedge => {
            return crate::gdb::test::boot(launch, crate::gdb::test::Kind::StepWedge)
        }
        Variant::GdbThreads => {
            return crate::gdb::test::boot(launch, crate::gdb::test::Kind::Threads)
        }
        Variant::Soak => return crate::soak::boot(launch, SOAK_IN_CI),
        _ => {}
    }
    let Some((script, _)) = catalog::session(test) else {
        return Ok((emulator::boot(launch)?, None));
    };
    let limits = session::Limits {
        first: launch.timeout,
        step: match test.emulator {
            Emulator::Bochs => BOCHS_STEP,
            Emulator::Qemu | Emulator::Kvm => QEMU_STEP,
        },
    };
    let slot = Arc::new(Mutex::new(None));
    let filled = Arc::clone(&slot);
    let input = Input::Script(Box::new(move |console, abort| {
        let report = session::run(script, console, abort, limits);
        *filled.lock().expect("session slot") = Some(report);
    }));
    let boot = emulator::boot_with(launch, input)?;
    let report = slot.lock().expect("session slot").take();
    Ok((boot, report))
}

/// Adds a session's failures and step times, and (once every step ran) the shell checks.
fn add_session(test: &BootTest, boot: &Boot, report: session::Report, record: &mut Record) {
    let finished = report.failures.is_empty();
    record.failures.extend(report.failures);
    record.figures.extend(report.figures);
    if let (true, Some((_, Some(flavour)))) = (finished, catalog::session(test)) {
        let (failures, figures) = shell::check_full(&boot.lines, flavour);
        record.failures.extend(failures);
        record.figures.extend(figures);
        let (failures, figures) = attacks::check(&boot.lines, flavour, test.cpu, test.cpus);
        record.failures.extend(failures);
        record.figures.extend(figures);
    }
    if let (true, Some(check)) = (finished, catalog::session_check(test)) {
        let (failures, figures) = check(&boot.lines);
        record.failures.extend(failures);
        record.figures.extend(figures);
    }
}

/// Spoils the image the way the test asks.
pub fn apply(variant: Variant, contents: &mut Contents) {
    match variant {
        Variant::Normal | Variant::Soak => {}
        Variant::CorruptMagic => {
            let end = contents.kernel.len().min(4);
            contents.kernel[..end].copy_from_slice(&b"XELF"[..end]);
        }
        Variant::Truncated => contents.kernel.truncate(contents.kernel.len() / 2),
        Variant::BadConfig => contents.boot_cfg = with_bad_mode(&contents.boot_cfg),
        Variant::NoInit => contents.initrd = without_init(&contents.initrd),
        Variant::CrashPanic => contents.boot_cfg.push_str("cmdline = crash=panic\n"),
        Variant::CrashTripleFault => contents.boot_cfg.push_str("cmdline = crash=triple-fault\n"),
        Variant::CrashUncheckedRoot => contents
            .boot_cfg
            .push_str("cmdline = crash=unchecked-root\n"),
        Variant::CrashAliasCpuTable => contents
            .boot_cfg
            .push_str("cmdline = crash=alias-cpu-table\n"),
        Variant::SwappedKernel => {
            contents.expected_kernel = Some(crate::image::sha256(&contents.kernel));
            let last = contents.kernel.len() - 1;
            contents.kernel[last] ^= 0xff;
        }
        Variant::Kpti => contents.boot_cfg.push_str(kpti::CMDLINE),
        Variant::Gdb
        | Variant::GdbKill
        | Variant::GdbThreads
        | Variant::GdbStepWedge
        | Variant::Production => contents.boot_cfg.push_str(crate::gdb::GDB_ON),
        Variant::PagetablesOff => contents.boot_cfg.push_str("pagetables = off\n"),
    }
}

/// The boot config with its `mode = ...` line replaced by an invalid value.
fn with_bad_mode(boot_cfg: &str) -> String {
    boot_cfg
        .lines()
        .map(|line| match line.trim_start().starts_with("mode") {
            true => "mode = turbo\n".to_string(),
            false => format!("{line}\n"),
        })
        .collect()
}

/// Which expectations failed, then the ends of the serial and emulator logs.
fn evidence(record: &Record, emulator_log: &str, run_dir: &Path) -> String {
    let mut text = String::new();
    for failure in &record.failures {
        text.push_str(&format!("\n    expected: {failure}"));
    }
    let sections = [
        (SERIAL_LOG, SERIAL_TAIL_LINES),
        (emulator_log, EMULATOR_TAIL_LINES),
    ];
    for (name, count) in sections {
        let path = run_dir.join(name);
        text.push_str(&format!(
            "\n    --- last {count} lines of {} ---",
            paths::display(&path)
        ));
        let tail = emulator::file_tail(&path, count);
        if tail.is_empty() {
            text.push_str("\n    | (empty)");
        }
        for line in tail {
            let line = crate::serial::clean(line.as_bytes());
            text.push_str(&format!("\n    | {line}"));
        }
    }
    text
}

/// The initrd archive `initrd` with every file but `init`.
fn without_init(initrd: &[u8]) -> Vec<u8> {
    let Ok(archive) = rampart_kernel_abi::initrd::Initrd::parse(initrd) else {
        return initrd.to_vec();
    };
    let files: Vec<(&str, &[u8], [u8; 32])> = archive
        .files()
        .filter(|f| f.name != "init")
        .map(|f| (f.name, f.data, f.sha256))
        .collect();
    rampart_kernel_abi::initrd::build(&files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Mode;

    #[test]
    fn only_a_quick_silent_failure_counts_as_never_started() {
        let dir = std::env::temp_dir().join(format!("rampart-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut record = Record::host("t", "bochs tigerlake".into());
        record.failures.push("the console closed".into());
        record.seconds = 0.5;
        assert!(never_started(&record, &dir), "no serial log at all");
        std::fs::write(dir.join(SERIAL_LOG), "").unwrap();
        assert!(never_started(&record, &dir), "an empty serial log");
        record.seconds = 30.0;
        assert!(
            !never_started(&record, &dir),
            "too long to be a start failure"
        );
        record.seconds = 0.5;
        std::fs::write(dir.join(SERIAL_LOG), "[fw] Rampart firmware\n").unwrap();
        assert!(
            !never_started(&record, &dir),
            "the firmware spoke: the guest's failure"
        );
        record.failures.clear();
        std::fs::write(dir.join(SERIAL_LOG), "").unwrap();
        assert!(!never_started(&record, &dir), "a pass is never retried");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn contents() -> Contents {
        Contents {
            firmware: Vec::new(),
            kernel: b"\x7fELF\x02\x01\x01\x00".to_vec(),
            initrd: Vec::new(),
            boot_cfg: image::boot_cfg(Mode::Native),
            expected_kernel: None,
        }
    }

    #[test]
    fn variants_spoil_the_image() {
        let mut c = contents();
        apply(Variant::CorruptMagic, &mut c);
        assert_eq!(&c.kernel[..4], b"XELF");
        let mut c = contents();
        apply(Variant::Truncated, &mut c);
        assert_eq!(c.kernel.len(), 4);
        let mut c = contents();
        apply(Variant::BadConfig, &mut c);
        assert_eq!(c.boot_cfg, "mode = turbo\nlog = info\n");
        let mut c = contents();
        c.initrd =
            rampart_kernel_abi::initrd::build(&[("init", b"x", [0; 32]), ("sh", b"y", [0; 32])]);
        apply(Variant::NoInit, &mut c);
        let archive = rampart_kernel_abi::initrd::Initrd::parse(&c.initrd).unwrap();
        assert!(archive.find("init").is_none() && archive.find("sh").is_some());
        let mut c = contents();
        let original = image::sha256(&c.kernel);
        apply(Variant::SwappedKernel, &mut c);
        assert_eq!(c.expected_kernel, Some(original));
        assert_ne!(image::sha256(&c.kernel), original);
    }
}
