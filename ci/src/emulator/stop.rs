//! Stopping a running boot from outside the guest: the user's `Ctrl-A x` or a signal to the
//! runner (SIGINT, SIGTERM, SIGHUP) raise one shared request that the supervisor polls.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The request's value for `Ctrl-A x` (0 is "none", a signal number is that signal).
const QUIT: usize = usize::MAX;

/// Why the runner stopped a boot early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The user typed `Ctrl-A x`.
    Quit,
    /// This signal arrived.
    Signal(i32),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Quit => write!(f, "quit (Ctrl-A x)"),
            Stop::Signal(number) => write!(f, "stopped by signal {number}"),
        }
    }
}

/// A stop request shared by the keyboard thread, signal handlers and the supervisor.
#[derive(Clone, Debug, Default)]
pub struct StopRequest(Arc<AtomicUsize>);

impl StopRequest {
    /// `Ctrl-A x`.
    pub fn quit(&self) {
        self.0.store(QUIT, Ordering::SeqCst);
    }

    /// From now on each of `signals` raises the request instead of its default action (the
    /// handler only stores a number: async-signal-safe).
    pub fn on_signals(&self, signals: &[i32]) -> std::io::Result<()> {
        for &signal in signals {
            let value = usize::try_from(signal).unwrap_or(QUIT);
            signal_hook::flag::register_usize(signal, Arc::clone(&self.0), value)?;
        }
        Ok(())
    }

    /// The request, if one was made.
    pub fn get(&self) -> Option<Stop> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            QUIT => Some(Stop::Quit),
            signal => Some(Stop::Signal(i32::try_from(signal).unwrap_or(-1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_and_signals() {
        let stop = StopRequest::default();
        assert_eq!(stop.get(), None);
        let shared = stop.clone();
        shared.quit();
        assert_eq!(stop.get(), Some(Stop::Quit));
        assert_eq!(Stop::Quit.to_string(), "quit (Ctrl-A x)");

        let stop = StopRequest::default();
        stop.on_signals(&[signal_hook::consts::SIGUSR2]).unwrap();
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR2).unwrap();
        assert_eq!(stop.get(), Some(Stop::Signal(signal_hook::consts::SIGUSR2)));
    }
}
