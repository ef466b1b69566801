//! The runner's side of the `gdb-bochs` session while gdb runs its script (see `stops`): it
//! follows the packets on the relay to know where gdb is, interrupts gdb with SIGINT (as
//! Ctrl-C at its prompt would) once the guest idles at the shell, types `run attacks` once gdb
//! resumed the guest, and after gdb detached lets the suite finish and types `exit`.

use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::link::Traffic;
use crate::boot_tests::session::{self, Limits, Report, Session, Step};
use crate::emulator::console::Console;

const PROMPT: &str = "sh> ";
/// The guest idles at its prompt this long before the interrupt.
const IDLE_BEFORE_INTERRUPT: Duration = Duration::from_secs(1);
/// Time limit of each wait on the packets.
const PACKET_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Stop replies (`S` or `T` + signal number in hex; gdbstub answers an interrupt with `S`):
/// SIGINT 2, SIGSEGV 11.
const STOP_SIGINT: &[&str] = &["$S02", "$T02"];
const STOP_SIGSEGV: &[&str] = &["$S0b", "$T0b"];
/// Packets by which gdb resumes the guest, and detaches.
const RESUME: &[&str] = &["$vCont;c", "$vCont;C", "$c#", "$C"];
const DETACH: &[&str] = &["$D"];

/// After the detach: the suite's summary, its exit line, then `exit`.
const AFTER_DETACH: Session = Session {
    steps: &[
        Step {
            label: "attacks-after-detach",
            send: None,
            expect: &[
                &["[kernel] attacks: ", "; audit records +"],
                &["[sh] attacks exited with code"],
                &[PROMPT],
            ],
        },
        Step {
            label: "exit",
            send: Some("exit"),
            expect: &[&["[init] sh exited with code"]],
        },
    ],
};

/// One direction of the relay, read from a position on.
struct Stream {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Stream {
    fn len(&self) -> usize {
        self.bytes.lock().map_or(0, |b| b.len())
    }

    /// Waits until one of `needles` appears at or after `from`; returns the position after it.
    fn wait(&self, from: usize, needles: &[&str], what: &str) -> Result<usize, String> {
        let deadline = Instant::now() + PACKET_WAIT;
        loop {
            if let Ok(bytes) = self.bytes.lock() {
                let text = String::from_utf8_lossy(&bytes[from.min(bytes.len())..]).into_owned();
                if let Some(end) = needles
                    .iter()
                    .filter_map(|n| text.find(n).map(|i| i + n.len()))
                    .min()
                {
                    return Ok(from + end);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no {what} within {} s", PACKET_WAIT.as_secs()));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Drives the guest while `gdb` runs the script; the report's failures say what did not come.
pub fn run(console: &Console, gdb: &Child, traffic: &Traffic, limits: Limits) -> Report {
    let mut report = Report::default();
    if let Err(failure) = interrupt_and_attack(console, gdb, traffic, limits, &mut report) {
        report.failures.push(format!("gdb drive: {failure}"));
        return report;
    }
    let after = session::run(&AFTER_DETACH, console, &AtomicBool::new(false), limits);
    report.failures.extend(after.failures);
    report.figures.extend(after.figures);
    report
}

fn interrupt_and_attack(
    console: &Console,
    gdb: &Child,
    traffic: &Traffic,
    limits: Limits,
    report: &mut Report,
) -> Result<(), String> {
    let (from_gdb, from_stub) = (
        Stream {
            bytes: Arc::clone(&traffic.from_gdb),
        },
        Stream {
            bytes: Arc::clone(&traffic.from_stub),
        },
    );
    let mut cursor = 0;
    console.wait_for(&mut cursor, &["[init] starting sh"], limits.first)?;
    console.wait_for(&mut cursor, &[PROMPT], limits.step)?;
    std::thread::sleep(IDLE_BEFORE_INTERRUPT);
    let (mark, mark_gdb) = (from_stub.len(), from_gdb.len());
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &gdb.id().to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -INT {} failed: {status}", gdb.id()));
    }
    from_stub.wait(mark, STOP_SIGINT, "SIGINT stop reply after Ctrl-C")?;
    report.figures.push((
        "gdb_ctrlc_ms".to_string(),
        sent.elapsed().as_millis() as u64,
    ));
    let resumed = from_gdb.wait(mark_gdb, RESUME, "resume after the Ctrl-C stop")?;
    console
        .send_line("run attacks")
        .map_err(|e| format!("cannot type `run attacks`: {e}"))?;
    let mut at = from_stub.len();
    for n in 1..=super::stops::BLOCKED.len() {
        at = from_stub.wait(at, STOP_SIGSEGV, &format!("SIGSEGV stop {n}"))?;
    }
    from_gdb.wait(resumed, DETACH, "detach")?;
    Ok(())
}
