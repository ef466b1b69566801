//! Console input in cooked mode (pure): echo printable bytes, backspace (0x08/0x7f) erases,
//! Enter (`\r` or `\n`) completes the line, which `read` returns with a trailing `\n`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Longest line kept; further bytes are dropped (not echoed) until Enter.
pub const MAX_LINE: usize = 256;

/// The line being edited and the completed lines not yet read.
#[derive(Default)]
pub struct LineDiscipline {
    editing: Vec<u8>,
    ready: VecDeque<u8>,
    lines: usize,
    last_was_cr: bool,
}

impl LineDiscipline {
    pub const fn new() -> Self {
        Self {
            editing: Vec::new(),
            ready: VecDeque::new(),
            lines: 0,
            last_was_cr: false,
        }
    }

    /// Takes one received byte; returns what to echo.
    pub fn receive(&mut self, byte: u8) -> &'static [u8] {
        let after_cr = core::mem::replace(&mut self.last_was_cr, byte == b'\r');
        match byte {
            // A terminal sending CR LF completes one line, not two.
            b'\n' if after_cr => b"",
            b'\r' | b'\n' => {
                self.ready.extend(self.editing.drain(..));
                self.ready.push_back(b'\n');
                self.lines += 1;
                b"\r\n"
            }
            0x08 | 0x7f => match self.editing.pop() {
                Some(_) => b"\x08 \x08",
                None => b"",
            },
            0x20..=0x7e if self.editing.len() < MAX_LINE => {
                self.editing.push(byte);
                ECHO[usize::from(byte - 0x20)]
            }
            _ => b"",
        }
    }

    /// Whether a complete line is waiting.
    pub fn has_line(&self) -> bool {
        self.lines > 0
    }

    /// Copies up to `buffer.len()` bytes of the first complete line into `buffer`; returns the
    /// count. The rest of a longer line stays for the next read.
    pub fn read(&mut self, buffer: &mut [u8]) -> usize {
        let mut count = 0;
        while count < buffer.len() && self.lines > 0 {
            let Some(byte) = self.ready.pop_front() else {
                break;
            };
            buffer[count] = byte;
            count += 1;
            if byte == b'\n' {
                self.lines -= 1;
                break;
            }
        }
        count
    }
}

/// One-byte echo strings for the printable range, so `receive` can return `&'static`.
static ECHO: [&[u8]; 95] = {
    const BYTES: [u8; 95] = {
        let mut bytes = [0; 95];
        let mut i = 0;
        while i < 95 {
            bytes[i] = 0x20 + i as u8;
            i += 1;
        }
        bytes
    };
    let mut table: [&[u8]; 95] = [b""; 95];
    let mut i = 0;
    while i < 95 {
        table[i] = BYTES.split_at(i).1.split_at(1).0;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(line: &mut LineDiscipline, bytes: &[u8]) -> Vec<u8> {
        bytes
            .iter()
            .flat_map(|&b| line.receive(b).to_vec())
            .collect()
    }

    #[test]
    fn echo_edit_and_read_a_line() {
        let mut line = LineDiscipline::new();
        assert_eq!(feed(&mut line, b"lx\x7fs"), b"lx\x08 \x08s");
        assert!(!line.has_line());
        assert_eq!(feed(&mut line, b"\r\n"), b"\r\n");
        let mut buffer = [0; 16];
        assert_eq!(line.read(&mut buffer), 3);
        assert_eq!(&buffer[..3], b"ls\n");
        assert!(!line.has_line());
    }

    #[test]
    fn long_lines_are_read_in_pieces_and_lines_one_at_a_time() {
        let mut line = LineDiscipline::new();
        feed(&mut line, b"abcd\nxy\n\x08\x01");
        let mut buffer = [0; 3];
        assert_eq!(line.read(&mut buffer), 3);
        assert_eq!(&buffer, b"abc");
        assert_eq!(line.read(&mut buffer), 2);
        assert_eq!(&buffer[..2], b"d\n");
        assert_eq!(line.read(&mut buffer), 3);
        assert_eq!(&buffer, b"xy\n");
        assert!(!line.has_line());
    }
}
