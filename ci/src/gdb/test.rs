//! The console scripts of the gdb boot tests. `gdb-bochs`: while the guest waits before its
//! first instruction, raw malformed packets on COM2 (each must get a NACK or an error reply,
//! and the session go on), then a real `gdb -batch -nx` through the relay (see `script` and
//! `stops`) while `drive` interrupts gdb and types `run attacks`; after gdb detaches, `exit` in
//! the guest shell. `gdb-kill-bochs`: the same raw packets, then gdb breaks and `kill`s the
//! guest. The transcript goes to `gdb.log` in the run directory.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{drive, link, script, stops};
use crate::boot_tests::session::{Limits, Report};
use crate::emulator::console::{self, Console};
use crate::emulator::{self, Boot, Input, Launch, Script};
use crate::paths;

/// The hypervisor's line when the stub waits before the guest's first instruction.
pub const STUB_WAITING: &str = "gdb: waiting for debugger on COM2";
/// How long gdb may take from attaching to the guest's shell prompt, and to end after its
/// script (Bochs runs the guest).
const GDB_LIMIT: Duration = Duration::from_secs(60);
/// Time limit of each later wait on the guest console (the attack suite, `exit`).
const BOCHS_STEP: Duration = Duration::from_secs(90);
const REPLY_WAIT: Duration = Duration::from_secs(5);
pub const TRANSCRIPT: &str = "gdb.log";

/// What a raw packet must get back.
enum Want {
    Nack,
    ErrorReply,
    Packet(&'static str),
}

/// Malformed, truncated and finally valid packets, sent before gdb attaches.
const RAW: &[(&[u8], Want)] = &[
    (b"$m0,1#zz", Want::Nack),      // checksum not hex
    (b"$garbage#00", Want::Nack),   // wrong checksum
    (b"$mzz#61", Want::ErrorReply), // right checksum, malformed command
    // Truncated (no checksum), then a valid read: the stub drops the first and answers the second.
    (b"$m4000000,4$m4000000,4#21", Want::Packet("+$")),
    (b"$?#3f", Want::Packet("+$T05")), // stop reason: still stopped at the start
    // Hostile memory packets: the local APIC page (MMIO: refused, never touched), hypervisor
    // memory far above RAM, a non-canonical address, and a 4 GiB read (clamped to one packet:
    // the stub answers instead of streaming for good).
    (b"$mfee00000,8#f1", Want::ErrorReply),
    (b"$Mfee00000,8:0000000000000000#0b", Want::ErrorReply),
    (b"$m8000000000000000,8#d9", Want::ErrorReply),
    (b"$m8,ffffffff#01", Want::Packet("+$")),
    (b"$?#3f", Want::Packet("+$T05")), // and the session goes on
];

/// Which gdb session a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `gdb-bochs`: the whole script (`script`, `stops`), detach, the guest runs to PASS.
    Full,
    /// `gdb-kill-bochs`: break, continue, `kill`; the hypervisor stops the machine.
    Kill,
    /// `gdb-threads-bochs-smp2`: break on an AP, every vCPU a thread, then `kill`.
    Threads,
    /// `gdb-step-wedge-bochs`: raw packets only (`wedge`), then `kill`.
    StepWedge,
}

/// Boots `launch` (its image has `gdb = on`) with COM2 as a socket and runs the script.
pub fn boot(launch: &Launch, kind: Kind) -> crate::error::Result<(Boot, Option<Report>)> {
    let com2 = console::free_port()?;
    let limits = Limits {
        first: launch.timeout,
        step: BOCHS_STEP,
    };
    let slot = Arc::new(Mutex::new(Report::default()));
    let input = Input::Script(script(
        com2,
        launch.run_dir.clone(),
        limits,
        kind,
        Arc::clone(&slot),
    ));
    let boot = emulator::boot_with_com2(launch, input, Some(com2))?;
    let report = std::mem::take(&mut *slot.lock().expect("gdb report"));
    Ok((boot, Some(report)))
}

/// The script for `emulator::boot_with_com2`; its report lands in `slot`.
pub fn script(
    com2: u16,
    run_dir: PathBuf,
    limits: Limits,
    kind: Kind,
    slot: Arc<Mutex<Report>>,
) -> Script {
    Box::new(move |console: &Console, abort: &AtomicBool| {
        let report = run(console, com2, &run_dir, limits, kind);
        if !report.failures.is_empty() {
            abort.store(true, Ordering::SeqCst);
        }
        *slot.lock().expect("gdb report") = report;
    })
}

fn run(console: &Console, com2: u16, run_dir: &Path, limits: Limits, kind: Kind) -> Report {
    let mut report = Report::default();
    let mut log = String::new();
    let debug = Debug {
        console,
        com2,
        run_dir,
        limits,
        kind,
    };
    if let Err(failure) = attach_and_debug(&debug, &mut log, &mut report) {
        report.failures.push(failure);
    }
    let _ = std::fs::write(run_dir.join(TRANSCRIPT), &log);
    report
}

/// What one gdb session works with.
struct Debug<'a> {
    console: &'a Console,
    com2: u16,
    run_dir: &'a Path,
    limits: Limits,
    kind: Kind,
}

/// The red team's raw packets before gdb attaches: each must get the reply `RAW` names.
fn raw_packets(stub: &mut TcpStream, log: &mut String) -> Result<(), String> {
    for (bytes, want) in RAW {
        let reply = link::exchange(stub, bytes, REPLY_WAIT);
        let (sent, got) = (
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&reply),
        );
        let _ = writeln!(log, "# raw {sent} -> {got}");
        let ok = match want {
            Want::Nack => reply == b"-",
            Want::ErrorReply => got.starts_with("+$E"),
            Want::Packet(prefix) => got.starts_with(prefix) && !got.contains("$E"),
        };
        if !ok {
            return Err(format!("raw packet `{sent}`: unexpected reply `{got}`"));
        }
    }
    Ok(())
}

/// Writes the session's gdb script for `kind` and starts `gdb -batch` on it, connected to the
/// relay at `port`, its output going to `output_path`.
fn start_gdb(run_dir: &Path, kind: Kind, port: u16, output_path: &Path) -> Result<Child, String> {
    let commands = run_dir.join("session.gdb");
    let text = match kind {
        Kind::Full => script::commands(&paths::kernel_elf(), port),
        Kind::Kill => script::kill_commands(&paths::kernel_elf(), port),
        Kind::Threads => script::threads_commands(&paths::kernel_elf(), port),
        Kind::StepWedge => unreachable!("the step wedge drives raw packets, no gdb"),
    };
    std::fs::write(&commands, text)
        .map_err(|e| format!("cannot write {}: {e}", commands.display()))?;
    let output = std::fs::File::create(output_path).map_err(|e| e.to_string())?;
    Command::new("gdb")
        .args(["-batch", "-nx", "-x"])
        .arg(&commands)
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(output)
        .spawn()
        .map_err(|e| format!("cannot start gdb: {e}"))
}

fn attach_and_debug(debug: &Debug, log: &mut String, report: &mut Report) -> Result<(), String> {
    let Debug {
        console,
        com2,
        run_dir,
        limits,
        kind,
    } = *debug;
    let start = Instant::now();
    let mut stub = link::connect(com2, start + limits.first)?;
    let mut cursor = 0;
    console.wait_for(&mut cursor, &[STUB_WAITING], limits.first)?;
    let noise = link::drain(&mut stub);
    let _ = writeln!(
        log,
        "# {noise} bytes of firmware console text drained from COM2"
    );
    report.figures.push((
        "boot_to_stub_ms".to_string(),
        start.elapsed().as_millis() as u64,
    ));
    raw_packets(&mut stub, log)?;
    if kind == Kind::StepWedge {
        report
            .failures
            .extend(super::wedge::run(console, stub, log));
        return Ok(());
    }
    let (listener, port) = link::listen()?;
    let traffic = link::relay(listener, stub, &run_dir.join("rsp.log"))?;
    let output_path = run_dir.join("gdb-output.txt");
    let mut gdb = start_gdb(run_dir, kind, port, &output_path)?;
    let gdb_start = Instant::now();
    let drive_limits = Limits {
        first: GDB_LIMIT,
        step: limits.step,
    };
    if kind == Kind::Full {
        // gdb interrupts, stops at blocked attacks, detaches; the guest runs on to `exit`.
        let driven = drive::run(console, &gdb, &traffic, drive_limits);
        report.failures.extend(driven.failures);
        report.figures.extend(driven.figures);
    }
    // gdb ends when its script ends, or when the emulator stops and the relay closes its side.
    let deadline = Instant::now() + GDB_LIMIT;
    while matches!(gdb.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    report.figures.push((
        "gdb_session_ms".to_string(),
        gdb_start.elapsed().as_millis() as u64,
    ));
    let _ = gdb.kill();
    let _ = gdb.wait();
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    log.push_str(&text);
    let (failures, figures) = match kind {
        Kind::Full => script::check(&text),
        Kind::Kill => (stops::check_kill(&text), Vec::new()),
        Kind::Threads => (script::check_threads(&text), Vec::new()),
        Kind::StepWedge => (Vec::new(), Vec::new()),
    };
    report.failures.extend(failures);
    report.figures.extend(figures);
    Ok(())
}
