//! Following one running emulator: tailing its serial log, spotting the result line, enforcing the time
//! limit, and killing its process group at the end.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stop::StopRequest;
use super::{Boot, Launch, Outcome, SERIAL_LOG};
use crate::error::{Context, Result};
use crate::serial::{ResultLine, SerialTail};

/// How often the serial log is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long lines are still collected after the result line before the emulator is killed.
const GRACE_AFTER_RESULT: Duration = Duration::from_millis(500);
/// How long an unterminated result line must stay unchanged before it counts.
const QUIET_RESULT_LINE: Duration = Duration::from_secs(1);

/// Follows one running emulator.
pub struct Supervisor<'a> {
    launch: &'a Launch,
    child: Child,
    tail: SerialTail,
    start: Instant,
    lines: Vec<String>,
    firmware_seconds: Option<f64>,
    /// Raised by a scripted console session that failed: stop without waiting for the timeout.
    abort: Option<Arc<AtomicBool>>,
    /// Raised by the user's `Ctrl-A x` or a signal to the runner.
    stop: Option<StopRequest>,
}

impl<'a> Supervisor<'a> {
    pub fn new(launch: &'a Launch, child: Child) -> Self {
        Supervisor {
            launch,
            child,
            tail: SerialTail::new(launch.run_dir.join(SERIAL_LOG)),
            start: Instant::now(),
            lines: Vec::new(),
            firmware_seconds: None,
            abort: None,
            stop: None,
        }
    }

    /// Stops the boot (as [`Outcome::Exited`], "stopped by the runner") once `flag` is raised.
    pub fn abort_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.abort = Some(flag);
        self
    }

    /// Stops the boot (as [`Outcome::Stopped`]) once `request` is made.
    pub fn stop_on(mut self, request: Option<StopRequest>) -> Self {
        self.stop = request;
        self
    }

    /// Kills the emulator without following it (it could not be set up).
    pub fn stop_now(mut self) {
        self.stop();
    }

    pub fn run(mut self) -> Result<Boot> {
        let outcome = self.watch();
        self.stop();
        let outcome = outcome?;
        if let Some(rest) = self.tail.finish() {
            self.take(rest);
        }
        Ok(Boot {
            outcome,
            lines: self.lines,
            seconds: self.start.elapsed().as_secs_f64(),
            firmware_seconds: self.firmware_seconds,
        })
    }

    fn watch(&mut self) -> Result<Outcome> {
        loop {
            let exited = self
                .child
                .try_wait()
                .context(|| "cannot poll emulator".to_string())?;
            if let Some(verdict) = self.read(exited.is_some())? {
                self.linger()?;
                return Ok(Outcome::Verdict(verdict));
            }
            if let Some(status) = exited {
                return Ok(Outcome::Exited(status.to_string()));
            }
            if self.start.elapsed() >= self.launch.timeout {
                return Ok(Outcome::Timeout);
            }
            if self
                .abort
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::SeqCst))
            {
                self.read(false)?;
                return Ok(Outcome::Exited(
                    "stopped by the runner: the scripted console session failed".into(),
                ));
            }
            if let Some(stop) = self.stop.as_ref().and_then(StopRequest::get) {
                self.read(false)?;
                return Ok(Outcome::Stopped(stop));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Keeps collecting lines for a moment after the verdict, unless the emulator has exited.
    fn linger(&mut self) -> Result<()> {
        let until = Instant::now() + GRACE_AFTER_RESULT;
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(POLL_INTERVAL);
            self.read(false)?;
        }
        self.read(false).map(|_| ())
    }

    /// Takes the new serial lines (and, once the emulator has exited, the unterminated rest); returns
    /// the first result line among them.
    fn read(&mut self, exited: bool) -> Result<Option<ResultLine>> {
        let mut lines = self.tail.poll()?;
        let rest = match exited {
            true => self.tail.finish(),
            false => self.tail.quiet_result_line(QUIET_RESULT_LINE),
        };
        lines.extend(rest);
        let mut verdict = None;
        for line in lines {
            verdict = verdict.or_else(|| ResultLine::parse(&line));
            self.take(line);
        }
        Ok(verdict)
    }

    fn take(&mut self, line: String) {
        if self.firmware_seconds.is_none() && line.trim_start().starts_with("[fw]") {
            self.firmware_seconds = Some(self.start.elapsed().as_secs_f64());
        }
        if self.launch.echo {
            println!("{line}");
        }
        self.lines.push(line);
    }

    /// Kills the emulator's whole process group, then reaps it.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
