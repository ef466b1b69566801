//! Typing into the guest from a raw terminal: stdin's bytes go through the escape keys to COM1 as
//! they come; `Ctrl-A x` raises the stop request, `Ctrl-A h` prints the help.

use std::io::{ErrorKind, Read, Write};

use super::escape::{Action, EscapeKeys, HELP};
use crate::emulator::console::ConsoleWriter;
use crate::emulator::stop::StopRequest;

/// Forwards stdin's keys to the guest from a detached thread (it ends on `Ctrl-A x`, at the end of
/// stdin, or with the runner).
pub fn forward(writer: ConsoleWriter, stop: StopRequest) {
    std::thread::spawn(move || {
        let mut keys = EscapeKeys::default();
        let mut buffer = [0u8; 256];
        let mut stdin = std::io::stdin();
        while !keys.quit() {
            let count = match stdin.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let step = keys.feed(&buffer[..count]);
            if writer.send_bytes(&step.forward).is_err() {
                break;
            }
            for action in step.actions {
                match action {
                    Action::Quit => stop.quit(),
                    Action::Help => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(HELP.as_bytes());
                        let _ = out.flush();
                    }
                }
            }
        }
    });
}
