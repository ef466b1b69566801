//! Running the dashboard: build once, boot native and hv side by side on Bochs (two cores,
//! one boot each), type `run bench` in each shell (one processor), then the same with N
//! processors and `run bench smp`, and write the comparison.

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::parse::{bench_lines, BootFigures, DONE};
use super::policy_matrix::{self, Config};
use super::sessions;
use super::size;
use super::table::{Dashboard, Side, Smp};
use crate::boot_tests::session::Session;
use crate::boot_tests::session::{self, Limits};
use crate::emulator::{self, Emulator, Input, Launch, Outcome, DISK_IMAGE};
use crate::error::{Context, Result};
use crate::image::{self, Contents, Mode};
use crate::{build, paths};

/// Exit codes: 0 both runs produced every result; 1 otherwise.
const EXIT_COMPLETE: u8 = 0;
const EXIT_INCOMPLETE: u8 = 1;

/// Processors of the SMP boots unless `--cpus` says otherwise.
pub const DEFAULT_SMP_CPUS: u32 = 2;

/// Builds, boots both modes on Bochs model `cpu` with one processor and then with `cpus` (unless
/// 1), prints the table and writes `target/rampart/bench/bench.md` and `bench.json`.
pub fn run(cpu: &str, cpus: u32, timeout: Duration) -> Result<u8> {
    build::build()?;
    let pair = |count: u32, session: &'static Session| {
        std::thread::scope(|scope| {
            let native =
                scope.spawn(|| boot_side(Mode::Native, None, cpu, count, session, timeout));
            let hv = scope.spawn(|| boot_side(Mode::Hv, None, cpu, count, session, timeout));
            (join(native), join(hv))
        })
    };
    let (native, hv) = pair(1, &sessions::FULL);
    let smp = (cpus > 1).then(|| {
        let (native, hv) = pair(cpus, &sessions::SMP);
        Smp { cpus, native, hv }
    });
    // Two boots at a time (two cores), each a configuration of the policy matrix.
    let mut matrix = Vec::new();
    for configs in policy_matrix::EXTRA.chunks(2) {
        let sides: Vec<Side> = std::thread::scope(|scope| {
            let handles: Vec<_> = configs
                .iter()
                .map(|c| {
                    scope
                        .spawn(move || boot_side(c.mode, Some(c), cpu, 1, &sessions::FULL, timeout))
                })
                .collect();
            handles.into_iter().map(join).collect()
        });
        matrix.extend(configs.iter().copied().zip(sides));
    }
    let efi = fs::read(paths::firmware_efi())
        .context(|| format!("cannot read {}", paths::firmware_efi().display()))?;
    let dashboard = Dashboard {
        cpu: cpu.to_string(),
        native,
        hv,
        smp,
        matrix,
        source: size::source_size(&paths::repo_root().join("hypervisor/src"))?,
        production_source: size::production_source_size(
            &paths::repo_root().join("hypervisor/src"),
        )?,
        contracts_source: size::contracts_source_size(&paths::repo_root().join("hypervisor"))?,
        efi_text: size::pe_text_size(&efi),
    };
    let markdown = dashboard.markdown();
    println!("\n{markdown}");
    let dir = paths::rampart_dir().join("bench");
    fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [("bench.md", markdown), ("bench.json", dashboard.json())] {
        let path = dir.join(name);
        fs::write(&path, text).context(|| format!("cannot write {}", path.display()))?;
        println!("xtask: wrote {}", paths::display(&path));
    }
    let complete = dashboard.sides().all(|side| side.problem.is_none());
    Ok(if complete {
        EXIT_COMPLETE
    } else {
        EXIT_INCOMPLETE
    })
}

fn join(handle: std::thread::ScopedJoinHandle<'_, Side>) -> Side {
    handle.join().unwrap_or_else(|_| Side {
        problem: Some("the boot thread panicked".into()),
        ..Side::default()
    })
}

/// Boots one mode and collects what it printed; a failure becomes the side's `problem`.
fn boot_side(
    mode: Mode,
    config: Option<&Config>,
    cpu: &str,
    cpus: u32,
    session: &'static Session,
    timeout: Duration,
) -> Side {
    match boot(mode, config, cpu, cpus, session, timeout) {
        Ok(side) => side,
        Err(err) => Side {
            problem: Some(err.to_string()),
            ..Side::default()
        },
    }
}

fn boot(
    mode: Mode,
    config: Option<&Config>,
    cpu: &str,
    cpus: u32,
    session: &'static Session,
    timeout: Duration,
) -> Result<Side> {
    let suffix = config.map_or(String::new(), Config::suffix);
    let name = match cpus {
        1 => format!("bench-{}-{cpu}{suffix}", mode.name()),
        n => format!("bench-{}-{cpu}-smp{n}{suffix}", mode.name()),
    };
    let launch = Launch {
        emulator: Emulator::Bochs,
        cpus,
        cpu: cpu.to_string(),
        run_dir: paths::run_dir(&name),
        timeout,
        echo: false,
    };
    emulator::fresh_run_dir(&launch.run_dir)?;
    let mut contents = Contents::from_build(mode)?;
    if let Some(config) = config {
        contents.boot_cfg.push_str(&config.boot_cfg());
    }
    image::write(&launch.run_dir.join(DISK_IMAGE), &contents)?;
    println!(
        "xtask: bench: booting {} under bochs (cpu {cpu}, processors: {cpus}), logs in {}…",
        mode.name(),
        paths::display(&launch.run_dir)
    );
    let limits = Limits {
        first: timeout,
        step: timeout,
    };
    let slot = Arc::new(Mutex::new(None));
    let filled = Arc::clone(&slot);
    let input = Input::Script(Box::new(move |console, abort| {
        let report = session::run(session, console, abort, limits);
        *filled.lock().expect("session slot") = Some(report);
    }));
    let boot = emulator::boot_with(&launch, input)?;
    let report = slot.lock().expect("session slot").take();
    let results = bench_lines(&boot.lines);
    let mut problems: Vec<String> = report.map(|r| r.failures).unwrap_or_default();
    if !boot.lines.iter().any(|l| l.contains(DONE)) {
        problems.push(format!("no `{DONE}` line"));
    }
    if !matches!(&boot.outcome, Outcome::Verdict(result) if result.pass) {
        problems.push(format!("the boot did not end in PASS ({:?})", boot.outcome));
    }
    println!(
        "xtask: bench: {} (processors: {cpus}) finished in {:.0} s with {} results",
        mode.name(),
        boot.seconds,
        results.len()
    );
    Ok(Side {
        results,
        boot: BootFigures::parse(&boot.lines),
        problem: (!problems.is_empty()).then(|| {
            format!(
                "{} (see {})",
                problems.join("; "),
                paths::display(&launch.run_dir)
            )
        }),
    })
}
