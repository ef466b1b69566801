//! What a person at a terminal sees while the boot tests run: the result lines as they come and,
//! under them, one live status line (the tests running with their elapsed time, N of M done),
//! redrawn every second. When stdout is not a terminal (a CI log) only the result lines are
//! printed, exactly as before.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the status line is redrawn.
pub const REDRAW: Duration = Duration::from_secs(1);
/// The status line is cut to this many characters (a narrow terminal must not wrap it).
const STATUS_WIDTH: usize = 110;

pub struct Progress {
    live: bool,
    state: Mutex<State>,
}

struct State {
    total: usize,
    done: usize,
    failed: usize,
    running: Vec<(&'static str, Instant)>,
    /// Whether a status line is on screen (to be erased before the next result line).
    shown: bool,
}

impl Progress {
    /// `live`: draw the status line (stdout is a terminal).
    pub fn new(total: usize, live: bool) -> Progress {
        Progress {
            live,
            state: Mutex::new(State {
                total,
                done: 0,
                failed: 0,
                running: Vec::new(),
                shown: false,
            }),
        }
    }

    pub fn started(&self, name: &'static str) {
        self.lock().running.push((name, Instant::now()));
        self.redraw();
    }

    /// Prints a finished test's text (its result line and any evidence) above the status line.
    pub fn finished(&self, name: &str, passed: bool, text: &str) {
        let mut state = self.lock();
        state.running.retain(|(running, _)| *running != name);
        state.done += 1;
        state.failed += usize::from(!passed);
        if self.live && state.shown {
            print!("\r\x1b[2K");
            state.shown = false;
        }
        println!("{text}");
        drop(state);
        self.redraw();
    }

    /// Draws the status line again (a no-op when not live).
    pub fn redraw(&self) {
        if !self.live {
            return;
        }
        let mut state = self.lock();
        let line = state.status(Instant::now());
        print!("\r\x1b[2K{line}");
        let _ = std::io::stdout().flush();
        state.shown = true;
    }

    /// Erases the status line for good (before the summary).
    pub fn clear(&self) {
        let mut state = self.lock();
        if self.live && state.shown {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
            state.shown = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// `[5/28 done, 1 failed] running: gdb-bochs 12s, soak-bochs 1m03s`
    fn status(&self, now: Instant) -> String {
        let failed = match self.failed {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        let running: Vec<String> = self
            .running
            .iter()
            .map(|(name, since)| format!("{name} {}", elapsed(now.duration_since(*since))))
            .collect();
        let mut line = format!("[{}/{} done{failed}]", self.done, self.total);
        if !running.is_empty() {
            line.push_str(" running: ");
            line.push_str(&running.join(", "));
        }
        line.chars().take(STATUS_WIDTH).collect()
    }
}

fn elapsed(time: Duration) -> String {
    let seconds = time.as_secs();
    match seconds {
        0..=59 => format!("{seconds}s"),
        _ => format!("{}m{:02}s", seconds / 60, seconds % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_names_what_runs_and_counts() {
        let start = Instant::now();
        let state = State {
            total: 28,
            done: 5,
            failed: 1,
            running: vec![("gdb-bochs", start), ("soak-bochs", start)],
            shown: false,
        };
        let line = state.status(start + Duration::from_secs(63));
        assert_eq!(
            line,
            "[5/28 done, 1 failed] running: gdb-bochs 1m03s, soak-bochs 1m03s"
        );
        assert_eq!(elapsed(Duration::from_secs(12)), "12s");
    }

    #[test]
    fn the_status_never_wraps() {
        let start = Instant::now();
        let state = State {
            total: 3,
            done: 0,
            failed: 0,
            running: vec![("a-very-long-boot-test-name-indeed", start); 6],
            shown: false,
        };
        assert!(state.status(start).chars().count() <= STATUS_WIDTH);
    }

    #[test]
    fn not_live_draws_nothing_and_counts() {
        let progress = Progress::new(1, false);
        progress.started("a");
        progress.finished("a", false, "test a FAIL");
        let state = progress.lock();
        assert_eq!((state.done, state.failed, state.shown), (1, 1, false));
        assert!(state.running.is_empty());
    }
}
