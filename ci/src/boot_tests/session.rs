//! Scripted console sessions, expect-style: each step types a line (or nothing), then waits for
//! groups of substrings in order (all of a group, in any order, before the next group). A step
//! that times out fails the session and stops the boot at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::emulator::console::Console;

/// One step of a session.
pub struct Step {
    /// Names the step in failures and figures (`step_ms.<label>`).
    pub label: &'static str,
    /// The line to type (a newline is added), or `None` to only wait.
    pub send: Option<&'static str>,
    /// Groups of substrings to wait for, in order; each group all of its members, in any order.
    pub expect: &'static [&'static [&'static str]],
}

/// A scripted session and its time limits.
pub struct Session {
    pub steps: &'static [Step],
}

/// How long each wait may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For the first step (it includes the boot).
    pub first: Duration,
    /// For every later step.
    pub step: Duration,
}

/// What a session did: failures (empty when every step passed) and per-step milliseconds.
#[derive(Default, Debug)]
pub struct Report {
    pub failures: Vec<String>,
    pub figures: Vec<(String, u64)>,
    /// Steps completed.
    pub completed: usize,
}

/// Runs `session` on `console`; on failure raises `abort` so the boot stops.
pub fn run(session: &Session, console: &Console, abort: &AtomicBool, limits: Limits) -> Report {
    let mut report = Report::default();
    let mut cursor = 0;
    for (index, step) in session.steps.iter().enumerate() {
        let start = Instant::now();
        let timeout = if index == 0 {
            limits.first
        } else {
            limits.step
        };
        if let Err(failure) = run_step(step, console, &mut cursor, timeout) {
            report
                .failures
                .push(format!("session step `{}`: {failure}", step.label));
            abort.store(true, Ordering::SeqCst);
            return report;
        }
        let ms = start.elapsed().as_millis() as u64;
        report.figures.push((format!("step_ms.{}", step.label), ms));
        report.completed += 1;
    }
    report
}

fn run_step(
    step: &Step,
    console: &Console,
    cursor: &mut usize,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(line) = step.send {
        console
            .send_line(line)
            .map_err(|err| format!("cannot type `{line}`: {err}"))?;
    }
    let deadline = Instant::now() + timeout;
    for group in step.expect {
        let left = deadline.saturating_duration_since(Instant::now());
        console.wait_for(cursor, group, left)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const STEPS: &[Step] = &[
        Step {
            label: "prompt",
            send: None,
            expect: &[&["ready"], &["sh> "]],
        },
        Step {
            label: "echo",
            send: Some("echo hi"),
            expect: &[&["hi"], &["sh> "]],
        },
        Step {
            label: "never",
            send: Some("ps"),
            expect: &[&["PID PPID"]],
        },
    ];

    /// A fake shell: answers `echo hi`, then ignores `ps`.
    #[test]
    fn runs_steps_and_stops_at_the_first_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let guest = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"ready\r\nsh> ").unwrap();
            let mut byte = [0u8; 1];
            let mut typed = Vec::new();
            while peer.read(&mut byte).unwrap_or(0) == 1 {
                typed.push(byte[0]);
                if typed.ends_with(b"echo hi\n") {
                    peer.write_all(b"echo hi\r\nhi\r\nsh> ").unwrap();
                }
            }
            typed
        });
        let log = std::env::temp_dir().join(format!("xtask-session-{}.log", std::process::id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let console = Console::connect(port, &log, false, deadline, || true).unwrap();
        let abort = AtomicBool::new(false);
        let limits = Limits {
            first: Duration::from_secs(5),
            step: Duration::from_millis(300),
        };
        let report = run(&Session { steps: STEPS }, &console, &abort, limits);
        assert_eq!(report.completed, 2);
        assert!(abort.load(Ordering::SeqCst));
        assert_eq!(report.failures.len(), 1);
        assert!(
            report.failures[0].starts_with("session step `never`: timed out"),
            "{:?}",
            report.failures
        );
        assert!(report.figures.iter().any(|(k, _)| k == "step_ms.echo"));
        console.close();
        assert_eq!(guest.join().unwrap(), b"echo hi\nps\n");
        std::fs::remove_file(&log).unwrap();
    }
}
