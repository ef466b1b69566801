//! The console's escape keys, like QEMU's `-nographic` mux (pure): every byte typed goes to the
//! guest except the escape sequences that start with Ctrl-A. `Ctrl-A x` quits, `Ctrl-A h` (or
//! `?`) prints help, `Ctrl-A Ctrl-A` sends one Ctrl-A, and any other key after Ctrl-A is ignored
//! (neither byte reaches the guest), as QEMU does. A Ctrl-A at the end of one read waits for the
//! next read.

/// Ctrl-A, the escape byte.
pub const CTRL_A: u8 = 0x01;

/// What the user asked of the runner (as opposed to bytes for the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `Ctrl-A x`: stop the emulator and leave.
    Quit,
    /// `Ctrl-A h` or `Ctrl-A ?`: show [`HELP`].
    Help,
}

/// The help text for `Ctrl-A h` (plain `\n`: raw mode keeps output processing, so the terminal
/// still turns it into CR LF).
pub const HELP: &str = "\n[xtask] console escapes (Ctrl-A then a key):\n\
    [xtask]   Ctrl-A x       quit: stop the emulator, restore the terminal, exit 0\n\
    [xtask]   Ctrl-A h or ?  this help\n\
    [xtask]   Ctrl-A Ctrl-A  send one Ctrl-A to the guest\n\
    [xtask]   Ctrl-A other   ignored; every other key (Ctrl-C too) goes to the guest\n";

/// One read's worth of input, sorted: bytes for the guest and actions for the runner, in order
/// of arrival within each list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub forward: Vec<u8>,
    pub actions: Vec<Action>,
}

/// Where the machine stands between reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Bytes go to the guest.
    #[default]
    Typing,
    /// A Ctrl-A arrived; the next byte is a command.
    Escaped,
    /// The user quit: everything after is dropped.
    Quit,
}

/// The escape-key state machine.
#[derive(Debug, Default)]
pub struct EscapeKeys {
    state: State,
}

impl EscapeKeys {
    /// Sorts `input` into bytes for the guest and actions.
    pub fn feed(&mut self, input: &[u8]) -> Step {
        let mut step = Step::default();
        for &byte in input {
            self.state = match (self.state, byte) {
                (State::Quit, _) => State::Quit,
                (State::Typing, CTRL_A) => State::Escaped,
                (State::Typing, _) => {
                    step.forward.push(byte);
                    State::Typing
                }
                (State::Escaped, CTRL_A) => {
                    step.forward.push(CTRL_A);
                    State::Typing
                }
                (State::Escaped, b'x' | b'X') => {
                    step.actions.push(Action::Quit);
                    State::Quit
                }
                (State::Escaped, b'h' | b'H' | b'?') => {
                    step.actions.push(Action::Help);
                    State::Typing
                }
                (State::Escaped, _) => State::Typing,
            };
        }
        step
    }

    /// Whether `Ctrl-A x` has been typed.
    pub fn quit(&self) -> bool {
        self.state == State::Quit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(forward: &[u8], actions: &[Action]) -> Step {
        Step {
            forward: forward.to_vec(),
            actions: actions.to_vec(),
        }
    }

    #[test]
    fn plain_keys_pass_through_control_bytes_included() {
        let mut keys = EscapeKeys::default();
        assert_eq!(keys.feed(b"hello\r"), step(b"hello\r", &[]));
        // Ctrl-C, Ctrl-D, Ctrl-Z, DEL and escape sequences are the guest's.
        assert_eq!(
            keys.feed(b"\x03\x04\x1a\x7f\x1b[A"),
            step(b"\x03\x04\x1a\x7f\x1b[A", &[])
        );
        assert_eq!(keys.feed(b""), Step::default());
    }

    #[test]
    fn ctrl_a_x_quits_and_drops_the_rest() {
        let mut keys = EscapeKeys::default();
        assert_eq!(keys.feed(b"ab\x01xcd"), step(b"ab", &[Action::Quit]));
        assert!(keys.quit());
        assert_eq!(keys.feed(b"more\x01h"), Step::default());
        let mut upper = EscapeKeys::default();
        assert_eq!(upper.feed(b"\x01X"), step(b"", &[Action::Quit]));
    }

    #[test]
    fn ctrl_a_split_across_reads() {
        let mut keys = EscapeKeys::default();
        assert_eq!(keys.feed(b"ls\x01"), step(b"ls", &[]));
        assert!(!keys.quit());
        assert_eq!(keys.feed(b"x"), step(b"", &[Action::Quit]));
        assert!(keys.quit());

        let mut keys = EscapeKeys::default();
        assert_eq!(keys.feed(b"\x01"), Step::default());
        assert_eq!(keys.feed(b"\x01"), step(&[CTRL_A], &[]));
        assert_eq!(
            keys.feed(b"x"),
            step(b"x", &[]),
            "x after a sent Ctrl-A is text"
        );
    }

    #[test]
    fn ctrl_a_ctrl_a_sends_one_ctrl_a() {
        let mut keys = EscapeKeys::default();
        assert_eq!(
            keys.feed(b"a\x01\x01b\x01\x01\x01\x01"),
            step(b"a\x01b\x01\x01", &[])
        );
        assert!(!keys.quit());
    }

    #[test]
    fn ctrl_a_h_helps_and_typing_goes_on() {
        let mut keys = EscapeKeys::default();
        assert_eq!(
            keys.feed(b"\x01hps\x01?\x01H\r"),
            step(b"ps\r", &[Action::Help, Action::Help, Action::Help])
        );
        assert!(HELP.contains("Ctrl-A x"));
    }

    #[test]
    fn unknown_key_after_ctrl_a_is_ignored() {
        let mut keys = EscapeKeys::default();
        assert_eq!(keys.feed(b"\x01q\x01\x03ok"), step(b"ok", &[]));
        assert!(!keys.quit());
        // The state machine is back to typing: Ctrl-A x still works.
        assert_eq!(keys.feed(b"\x01x"), step(b"", &[Action::Quit]));
    }
}
