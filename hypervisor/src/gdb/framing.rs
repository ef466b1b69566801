//! Packet framing in front of `gdbstub`: only well-formed packets reach it.
//!
//! `gdbstub` 0.7 ends its state machine on a bad checksum or an unexpected byte between
//! packets, so the stub would die on line noise. This framer drops junk between packets,
//! answers a bad or overlong packet with `-` (the protocol's NACK: "retransmit"), restarts on a
//! `$` inside a packet (a truncated packet followed by a new one), and passes `+`, `-` and
//! Ctrl-C (0x03) through as single bytes (GDB remote protocol, "Overview" and "Interrupts").
#![forbid(unsafe_code)]

use core::fmt::Write as _;

/// Longest packet accepted, `$` and checksum included (also the size of gdbstub's buffer).
pub const MAX_PACKET: usize = 4096;
/// Most bytes one `m` read may ask for: its hex reply fits one packet. gdbstub reads the
/// whole requested length in buffer-sized chunks, so `m8,ffffffff` would stream 8 GiB of hex
/// and leave the stub deaf (Ctrl-C included); a clamped read answers fewer bytes, which GDB
/// handles by asking for the rest (GDB remote protocol, "m addr,length").
pub const MAX_READ: u64 = ((MAX_PACKET - 4) / 2) as u64;

const START: u8 = b'$';
const END: u8 = b'#';
const ACK: u8 = b'+';
const NACK: u8 = b'-';
pub const CTRL_C: u8 = 0x03;

/// What one input byte produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Nothing complete yet (or junk dropped).
    Pending,
    /// A complete packet with a valid checksum (`$...#xx`) or a single `+`, `-` or 0x03.
    Forward(&'a [u8]),
    /// A packet with a bad checksum or too long: answer `-`.
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Between,
    Body,
    Checksum1,
    Checksum2,
    /// An overlong packet: skip to its end, then reject it.
    Overflow,
}

/// Reassembles packets byte by byte.
pub struct Framer {
    buffer: [u8; MAX_PACKET],
    len: usize,
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub const fn new() -> Self {
        Self {
            buffer: [0; MAX_PACKET],
            len: 0,
            state: State::Between,
        }
    }

    /// True while no packet is half received.
    #[cfg(any(test, feature = "internals"))]
    pub fn idle(&self) -> bool {
        self.state == State::Between
    }

    pub fn push(&mut self, byte: u8) -> Frame<'_> {
        match (self.state, byte) {
            (State::Between, ACK | NACK | CTRL_C) => {
                self.buffer[0] = byte;
                Frame::Forward(&self.buffer[..1])
            }
            (State::Between, START) | (State::Body, START) => {
                self.buffer[0] = START;
                self.len = 1;
                self.state = State::Body;
                Frame::Pending
            }
            (State::Between, _) => Frame::Pending,
            (State::Overflow, END) => {
                self.state = State::Checksum1;
                self.len = 0;
                Frame::Pending
            }
            (State::Overflow, _) => Frame::Pending,
            (State::Body, _) if self.len + 3 > MAX_PACKET => {
                self.state = if byte == END {
                    State::Checksum1
                } else {
                    State::Overflow
                };
                self.len = 0;
                Frame::Pending
            }
            (State::Body, _) => {
                self.store(byte);
                if byte == END {
                    self.state = State::Checksum1;
                }
                Frame::Pending
            }
            (State::Checksum1, _) => {
                self.store(byte);
                self.state = State::Checksum2;
                Frame::Pending
            }
            (State::Checksum2, _) => {
                self.store(byte);
                self.state = State::Between;
                if self.len >= 4 && checksum_ok(&self.buffer[..self.len]) {
                    self.len = clamp_memory_read(&mut self.buffer, self.len);
                    Frame::Forward(&self.buffer[..self.len])
                } else {
                    Frame::Reject
                }
            }
        }
    }

    fn store(&mut self, byte: u8) {
        if let Some(slot) = self.buffer.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }
}

/// Rewrites a valid `$m<addr>,<len>#xx` packet whose length exceeds [`MAX_READ`] to ask for
/// [`MAX_READ`] bytes (new checksum); returns the packet's new length. Other packets stay.
fn clamp_memory_read(buffer: &mut [u8; MAX_PACKET], len: usize) -> usize {
    let body = &buffer[1..len - 3];
    let Some(rest) = body.strip_prefix(b"m") else {
        return len;
    };
    let Some(comma) = rest.iter().position(|&b| b == b',') else {
        return len;
    };
    let (address, length) = (&rest[..comma], &rest[comma + 1..]);
    let requested = core::str::from_utf8(length)
        .ok()
        .and_then(|text| u64::from_str_radix(text, 16).ok());
    // Lengths that do not parse (or overflow u64) are gdbstub's to reject; only clamp big ones.
    if requested.is_some_and(|n| n <= MAX_READ) || (requested.is_none() && length.len() <= 16) {
        return len;
    }
    let mut packet = Writer::default();
    packet.push(b"$m");
    packet.push(address);
    let _ = write!(packet, ",{MAX_READ:x}");
    let sum = packet.bytes[1..packet.len]
        .iter()
        .fold(0u8, |s, b| s.wrapping_add(*b));
    let _ = write!(packet, "#{sum:02x}");
    if packet.overflowed {
        return len; // an address too long to be real: gdbstub rejects it
    }
    buffer[..packet.len].copy_from_slice(&packet.bytes[..packet.len]);
    packet.len
}

/// A short packet being built.
struct Writer {
    bytes: [u8; 64],
    len: usize,
    overflowed: bool,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
            overflowed: false,
        }
    }
}

impl Writer {
    fn push(&mut self, bytes: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + bytes.len()) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflowed = true,
        }
    }
}

impl core::fmt::Write for Writer {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        self.push(text.as_bytes());
        Ok(())
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

/// `$body#xx` where xx is the two-digit hex sum of the body bytes modulo 256.
fn checksum_ok(packet: &[u8]) -> bool {
    let [b'$', body @ .., b'#', high, low] = packet else {
        return false;
    };
    let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low)) else {
        return false;
    };
    body.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == (high << 4) | low
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input`; returns what came out, as strings (`-` for a reject).
    fn run(input: &[u8]) -> Vec<String> {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        for &b in input {
            match framer.push(b) {
                Frame::Pending => {}
                Frame::Forward(p) => out.push(String::from_utf8_lossy(p).into_owned()),
                Frame::Reject => out.push("REJECT".into()),
            }
        }
        out
    }

    #[test]
    fn good_packets_and_control_bytes_pass() {
        assert_eq!(run(b"+$g#67\x03-"), vec!["+", "$g#67", "\u{3}", "-"]);
    }

    #[test]
    fn bad_checksums_are_rejected() {
        assert_eq!(run(b"$m0,1#zz$garbage#00"), vec!["REJECT", "REJECT"]);
        assert_eq!(run(b"$g#6"), Vec::<String>::new());
    }

    #[test]
    fn junk_between_packets_is_dropped_and_truncated_packets_resync() {
        assert_eq!(run(b"hello$m0,1$g#67"), vec!["$g#67"]);
    }

    fn packet(body: &str) -> Vec<u8> {
        let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        format!("${body}#{sum:02x}").into_bytes()
    }

    #[test]
    fn huge_memory_reads_are_clamped_to_one_packet() {
        let out = run(&packet("m8,ffffffff"));
        assert_eq!(out, vec![String::from_utf8(packet("m8,7fe")).unwrap()]);
        assert_eq!(MAX_READ, 0x7fe);
        // Small reads, other commands, and lengths gdbstub will reject pass unchanged.
        for body in ["m8,10", "mffffffff84000000,7fe", "g", "M8,1:00", "m8,zz"] {
            assert_eq!(
                run(&packet(body)),
                vec![String::from_utf8(packet(body)).unwrap()]
            );
        }
        let huge = "m8,ffffffffffffffffff";
        assert_eq!(
            run(&packet(huge)),
            vec![String::from_utf8(packet("m8,7fe")).unwrap()]
        );
    }

    #[test]
    fn overlong_packets_are_rejected_then_the_next_one_works() {
        let mut input = vec![b'$'];
        input.extend(std::iter::repeat_n(b'a', MAX_PACKET * 2));
        input.extend(b"#00$g#67");
        assert_eq!(run(&input), vec!["REJECT", "$g#67"]);
    }
}
