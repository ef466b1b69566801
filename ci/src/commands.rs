//! The subcommands: build, image, run, test and bench.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::boot_tests::{self, catalog, junit, partition, report};
use crate::cli::{BenchArgs, ImageArgs, RunArgs, SoakArgs, TestArgs};
use crate::emulator::stop::{Stop, StopRequest};
use crate::emulator::{self, Boot, Emulator, Input, Launch, Outcome, DISK_IMAGE};
use crate::error::{Context, Error, Result};
use crate::image::{self, Contents, Mode};
use crate::setup::{self, Need};
use crate::terminal::{self, raw::RawMode};
use crate::{build, host_tests, paths};

/// Exit codes of `run`.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_TIMEOUT: u8 = 2;
pub const EXIT_EMULATOR_EXITED: u8 = 3;
const EMULATOR_TAIL_LINES: usize = 20;

pub fn build() -> Result<u8> {
    setup::ensure(&[])?;
    build::build()?;
    Ok(EXIT_PASS)
}

/// `image [--mode hv|native] [--out PATH] [--production] [--gpt] [--firmware EFI --kernel ELF]`:
/// the image path is the last line of stdout. With both `--firmware` and `--kernel` given, those
/// files go on the image unbuilt. `--production` uses the firmware built without the GDB stub;
/// `--gpt` writes a GPT disk with the FAT volume as its EFI System Partition (for a USB stick).
pub fn image(args: ImageArgs) -> Result<u8> {
    let ImageArgs {
        mode,
        out,
        production,
        gpt,
        firmware,
        kernel,
    } = args;
    // The parser refuses one of --firmware and --kernel without the other, and either with
    // --production (which builds its own firmware).
    let contents = match (firmware, kernel) {
        (Some(firmware), Some(kernel)) => Contents::from_files(mode, &firmware, &kernel)?,
        _ => built_contents(mode, production)?,
    };
    let path = out.unwrap_or_else(|| image::default_path(mode, production, gpt));
    if !gpt {
        image::write(&path, &contents)?;
        println!("{}", path.display());
        return Ok(EXIT_PASS);
    }
    image::write_gpt(&path, &contents)?;
    println!("xtask: GPT disk image, one EFI System Partition (FAT) holding \\EFI\\BOOT\\BOOTX64.EFI and \\rampart\\*");
    println!("xtask: write it to a USB stick (this erases the whole stick; check the device name with lsblk):");
    println!(
        "xtask:   sudo dd if={} of=/dev/sdX bs=4M conv=fsync status=progress",
        path.display()
    );
    println!("{}", path.display());
    Ok(EXIT_PASS)
}

/// Builds, then the files for `mode` (with the production firmware if asked).
fn built_contents(mode: Mode, production: bool) -> Result<Contents> {
    setup::ensure(&[])?;
    build::build()?;
    let mut contents = Contents::from_build(mode)?;
    if production {
        build::build_production()?;
        contents.firmware = std::fs::read(paths::production_firmware_efi())
            .context(|| "cannot read the production firmware".to_string())?;
    }
    Ok(contents)
}

fn make_image(mode: Mode, out: Option<PathBuf>) -> Result<PathBuf> {
    build::build()?;
    let path = out.unwrap_or_else(|| image::default_path(mode, false, false));
    image::write(&path, &Contents::from_build(mode)?)?;
    Ok(path)
}

/// `run [--emulator E] [--mode M] [--cpu MODEL] [--cpus N] [--timeout S] [--image PATH]`: boot with the serial
/// console live. `--image` boots an existing image (e.g. a failed test's `disk.img`) without building.
pub fn run(args: RunArgs) -> Result<u8> {
    let RunArgs {
        emulator: choice,
        mode,
        cpu,
        cpus,
        timeout,
        image: given_image,
    } = args;
    let timeout = timeout.map(Duration::from_secs);
    let raw = std::io::stdin().is_terminal();
    if raw {
        println!("{}", terminal::RAW_BANNER);
    }
    let emulator = emulator::choose(choice.0, mode);
    setup::ensure(&[need_of(emulator)])?;
    let image = match given_image {
        Some(path) => path,
        None => make_image(mode, None)?,
    };
    println!("xtask: image {}", paths::display(&image));
    let run_name = match emulator {
        Emulator::Bochs => format!("bochs-{}-{cpu}", mode.name()),
        other => format!("{}-{}", other.name(), mode.name()),
    };
    let run_dir = paths::run_dir(&run_name);
    emulator::fresh_run_dir(&run_dir)?;
    std::fs::copy(&image, run_dir.join(DISK_IMAGE))
        .context(|| format!("cannot copy the image into {}", run_dir.display()))?;
    let launch = Launch {
        emulator,
        cpu: emulator.cpu_label(&cpu),
        cpus,
        timeout: timeout.unwrap_or(emulator.default_timeout()),
        run_dir,
        // The console is shown raw (prompt included) by the interactive input below.
        echo: false,
    };
    println!(
        "xtask: booting under {} (cpu {}), logs in {}, timeout {} s…",
        emulator.name(),
        launch.cpu,
        paths::display(&launch.run_dir),
        launch.timeout.as_secs()
    );
    if !raw {
        println!(
            "xtask: the guest console is attached to this terminal (lines typed here go to COM1)"
        );
        let boot = emulator::boot_with(&launch, Input::Lines)?;
        return Ok(conclude(&launch, &boot));
    }
    println!("xtask: the guest console is attached to this terminal: keys go to COM1 as typed (Ctrl-A h: help)");
    let stop = StopRequest::default();
    stop.on_signals(&[SIGINT, SIGTERM, SIGHUP])
        .context(|| "cannot handle SIGINT, SIGTERM and SIGHUP".to_string())?;
    let raw_mode = RawMode::enter(std::io::stdin())?;
    let boot = emulator::boot_with(&launch, Input::Keys(stop));
    drop(raw_mode);
    Ok(conclude(&launch, &boot?))
}

/// `bench [--cpu MODEL] [--cpus N] [--timeout S]`: native and hv side by side on the same Bochs
/// model, on one processor and on N (default [`crate::bench::DEFAULT_SMP_CPUS`]; 1 skips the
/// SMP boots).
pub fn bench(args: BenchArgs) -> Result<u8> {
    setup::ensure(&[Need::Bochs])?;
    let timeout = args.timeout.map(Duration::from_secs);
    crate::bench::run(
        &args.cpu,
        args.cpus,
        timeout.unwrap_or(Emulator::Bochs.default_timeout()),
    )
}

/// `soak [--minutes M] [--cpu MODEL]`: one hv boot under Bochs repeating spawn/exit, the exit
/// fuzzer and the attack suite for M minutes (default 10), then checking that free frames and
/// audit records per round hold steady (`crate::soak`).
pub fn soak(args: SoakArgs) -> Result<u8> {
    let SoakArgs { minutes, cpu } = args;
    setup::ensure(&[Need::Bochs])?;
    let run_dir = paths::run_dir("soak");
    emulator::fresh_run_dir(&run_dir)?;
    build::build()?;
    image::write(&run_dir.join(DISK_IMAGE), &Contents::from_build(Mode::Hv)?)?;
    let launch = Launch {
        emulator: Emulator::Bochs,
        cpu,
        cpus: 1,
        timeout: Duration::from_secs(minutes * 60 + 600),
        run_dir,
        echo: false,
    };
    let (boot, report) = crate::soak::boot(&launch, Duration::from_secs(minutes * 60))?;
    let report = report.unwrap_or_default();
    for (name, value) in &report.figures {
        println!("xtask: soak: {name}={value}");
    }
    for failure in &report.failures {
        println!("xtask: soak: FAIL {failure}");
    }
    let passed =
        report.failures.is_empty() && matches!(boot.outcome, Outcome::Verdict(ref r) if r.pass);
    println!("xtask: soak: {}", if passed { "PASS" } else { "FAIL" });
    Ok(if passed { EXIT_PASS } else { EXIT_FAIL })
}

fn need_of(emulator: Emulator) -> Need {
    match emulator {
        Emulator::Bochs => Need::Bochs,
        Emulator::Qemu | Emulator::Kvm => Need::Qemu,
    }
}

/// Prints how the run ended and picks the exit code.
fn conclude(launch: &Launch, boot: &Boot) -> u8 {
    let fw = boot
        .firmware_seconds
        .map_or(String::new(), |s| format!(", first [fw] line at {s:.1} s"));
    match &boot.outcome {
        Outcome::Verdict(result) => {
            println!(
                "xtask: {} after {:.1} s{fw}",
                result.verdict(),
                boot.seconds
            );
            if result.pass {
                EXIT_PASS
            } else {
                EXIT_FAIL
            }
        }
        Outcome::Stopped(stop) => {
            println!("xtask: {stop} after {:.1} s{fw}", boot.seconds);
            match stop {
                Stop::Quit => EXIT_PASS,
                // A shell's convention: 128 + the signal number.
                Stop::Signal(number) => u8::try_from(128 + number).unwrap_or(EXIT_FAIL),
            }
        }
        Outcome::Timeout => {
            println!(
                "xtask: timeout after {:.0} s without a RAMPART-RESULT line{fw}",
                boot.seconds
            );
            EXIT_TIMEOUT
        }
        Outcome::Exited(status) => {
            let log = launch.run_dir.join(launch.emulator.log_name());
            println!("xtask: the emulator exited ({status}) without a RAMPART-RESULT line; last lines of {}:", paths::display(&log));
            let tail = emulator::file_tail(&log, EMULATOR_TAIL_LINES);
            if tail.is_empty() {
                println!("  | (empty)");
            }
            for line in tail {
                println!("  | {line}");
            }
            EXIT_EMULATOR_EXITED
        }
    }
}

/// `test` (flags in `crate::cli::TestArgs`): host unit tests, then the boot tests, N at a time
/// (default: the machine's parallelism), only the I-th of N parts with `--partition` (`--list`
/// too), under QEMU/KVM with `--emulator kvm`; writes test-results.json and junit.xml.
pub fn test(args: TestArgs) -> Result<u8> {
    let TestArgs {
        only,
        skip_host,
        no_build,
        list,
        timeout,
        jobs,
        partition: part,
        emulator,
    } = args;
    let timeout = timeout.map(Duration::from_secs);
    let mut tests = catalog::select(only.as_deref()).map_err(Error::Usage)?;
    if let Some(part) = part {
        tests = part.select(&tests);
    }
    if emulator == Some(Emulator::Kvm) {
        tests = catalog::under_kvm(&tests).map_err(Error::Usage)?;
    }
    let jobs = partition::jobs(jobs, tests.len());
    if list {
        for test in &tests {
            let cpu = test.emulator.cpu_label(test.cpu);
            println!(
                "{:<22} {} {} mode={}",
                test.name,
                test.emulator.name(),
                cpu,
                test.mode.name()
            );
        }
        return Ok(EXIT_PASS);
    }
    setup::ensure(&test_needs(&tests))?;
    let mut records = Vec::new();
    if !skip_host {
        records.push(host_tests::run());
    }
    if !tests.is_empty() {
        records.extend(boot_records(&tests, timeout, no_build, jobs));
    }
    println!("{}", report::summary(&records));
    let json = paths::rampart_dir().join("test-results.json");
    report::write_json(&json, &records)?;
    let junit = paths::rampart_dir().join("junit.xml");
    junit::write(&junit, &records)?;
    println!(
        "xtask: reports in {} and {}",
        paths::display(&junit),
        paths::display(&json)
    );
    let failed = report::keep_failed_runs(&records, &paths::rampart_dir().join("failed"))?;
    if failed > 0 {
        println!(
            "xtask: the logs of the {failed} failed boot(s) are in {}",
            paths::display(&paths::rampart_dir().join("failed"))
        );
    }
    let all_passed = records.iter().all(|r| r.passed());
    Ok(if all_passed { EXIT_PASS } else { EXIT_FAIL })
}

fn test_needs(tests: &[&catalog::BootTest]) -> Vec<Need> {
    let mut needs = vec![Need::Gdb];
    for test in tests {
        let need = need_of(test.emulator);
        if !needs.contains(&need) {
            needs.push(need);
        }
    }
    needs
}

/// Builds once, then boots; a failed build fails every boot test with the build error.
fn boot_records(
    tests: &[&'static catalog::BootTest],
    timeout: Option<Duration>,
    no_build: bool,
    jobs: usize,
) -> Vec<report::Record> {
    let production = tests
        .iter()
        .any(|test| matches!(test.variant, catalog::Variant::Production));
    let built = match no_build {
        true => Ok(()),
        false if production => build::build().and_then(|()| build::build_production()),
        false => build::build(),
    };
    match built {
        Ok(()) => {
            let at_once = match jobs {
                2 => "two".to_string(),
                n => n.to_string(),
            };
            println!("xtask: {} boot tests, {at_once} at a time…", tests.len());
            boot_tests::run_all(tests, timeout, jobs)
        }
        Err(err) => {
            println!("xtask: error: {err}");
            tests.iter().map(|test| build_failed(test, &err)).collect()
        }
    }
}

fn build_failed(test: &catalog::BootTest, err: &Error) -> report::Record {
    let platform = format!(
        "{} {}",
        test.emulator.name(),
        test.emulator.cpu_label(test.cpu)
    );
    let mut record = report::Record::host(test.name, platform);
    record.failures.push(format!("not run: {err}"));
    println!("{}", record.line());
    record
}
