//! Raw mode for the terminal on stdin while the guest console is attached, and putting the saved
//! settings back on every way out: the guard's `Drop` (normal ends, the emulator's death, a
//! signal, `Ctrl-A x`) and a panic hook (the workspace builds with `panic = "abort"`, so a panic
//! never unwinds to the guard).
//!
//! The settings are QEMU's for `-nographic` stdio (`chardev/char-stdio.c`): no echo, no line
//! editing, no signal keys (Ctrl-C is a byte for the guest), no CR/LF translation or flow control
//! on input, one byte per read; output processing stays on so the runner's own `\n` still starts
//! a line.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, Once};

use nix::sys::termios::{
    self, InputFlags, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices, Termios,
};

use crate::error::{Error, Result};

/// The terminal in raw mode and its settings from before, for the panic hook.
static SAVED: Mutex<Option<(OwnedFd, Termios)>> = Mutex::new(None);
static PANIC_HOOK: Once = Once::new();

/// The terminal is raw while this lives; dropping it restores the settings from before.
pub struct RawMode {
    _private: (),
}

impl RawMode {
    /// Puts the terminal `fd` into raw mode.
    pub fn enter(fd: impl AsFd) -> Result<RawMode> {
        let fd = fd.as_fd();
        let saved = termios::tcgetattr(fd).map_err(|err| setup("tcgetattr", err))?;
        let mut raw = saved.clone();
        make_raw(&mut raw);
        let owned = fd
            .try_clone_to_owned()
            .map_err(|err| Error::Setup(format!("cannot dup the terminal: {err}")))?;
        install_panic_hook();
        *lock() = Some((owned, saved));
        let guard = RawMode { _private: () };
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).map_err(|err| setup("tcsetattr", err))?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the saved settings back (once; later calls do nothing).
pub fn restore() {
    let saved = lock().take();
    if let Some((fd, settings)) = saved {
        let _ = termios::tcsetattr(&fd, SetArg::TCSADRAIN, &settings);
    }
}

/// Raw input as QEMU sets it, output processing kept.
fn make_raw(settings: &mut Termios) {
    settings.input_flags &= !(InputFlags::IGNBRK
        | InputFlags::BRKINT
        | InputFlags::PARMRK
        | InputFlags::ISTRIP
        | InputFlags::INLCR
        | InputFlags::IGNCR
        | InputFlags::ICRNL
        | InputFlags::IXON);
    settings.output_flags |= OutputFlags::OPOST;
    settings.local_flags &=
        !(LocalFlags::ECHO | LocalFlags::ECHONL | LocalFlags::ICANON | LocalFlags::IEXTEN);
    settings.local_flags &= !LocalFlags::ISIG;
    settings.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    settings.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
}

/// The panic hook restores the terminal before the default report (and the abort).
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The saved settings, even if a panic poisoned the lock (restoring is still right).
fn lock() -> std::sync::MutexGuard<'static, Option<(OwnedFd, Termios)>> {
    SAVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn setup(what: &str, err: nix::Error) -> Error {
    Error::Setup(format!("{what} on the terminal: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real pseudo-terminal: raw while the guard lives, exactly as before afterwards, and
    /// `restore` (the panic hook's path) works without the guard.
    #[test]
    fn raw_mode_on_a_pty_and_back() {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let before = termios::tcgetattr(&pty.slave).unwrap();
        assert!(before
            .local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON));
        {
            let _raw = RawMode::enter(&pty.slave).unwrap();
            let now = termios::tcgetattr(&pty.slave).unwrap();
            for flag in [LocalFlags::ECHO, LocalFlags::ICANON, LocalFlags::ISIG] {
                assert!(!now.local_flags.contains(flag), "{flag:?} still set");
            }
            assert!(!now.input_flags.contains(InputFlags::ICRNL));
            assert!(now.output_flags.contains(OutputFlags::OPOST));
        }
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);

        let raw = RawMode::enter(&pty.slave).unwrap();
        restore();
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);
        drop(raw); // nothing left to restore
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);

        // A panic restores the terminal through the hook, before any guard could (with
        // `panic = "abort"` none would).
        let raw = RawMode::enter(&pty.slave).unwrap();
        let panicked = std::thread::spawn(|| panic!("test panic")).join();
        assert!(panicked.is_err());
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);
        std::mem::forget(raw);
    }
}
