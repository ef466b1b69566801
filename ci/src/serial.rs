//! Guest serial output: following a growing log file, splitting it into clean lines, and the result marker.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};

/// Every boot ends on one line starting with this marker (the contract with firmware and kernel).
pub const RESULT_MARKER: &str = "RAMPART-RESULT:";

/// Follows a serial log file as the emulator appends to it.
pub struct SerialTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    last_growth: Instant,
}

impl SerialTail {
    pub fn new(path: PathBuf) -> Self {
        SerialTail {
            path,
            offset: 0,
            partial: Vec::new(),
            last_growth: Instant::now(),
        }
    }

    /// Reads what was appended since the last call and returns the complete lines in it.
    pub fn poll(&mut self) -> Result<Vec<String>> {
        let Ok(mut file) = File::open(&self.path) else {
            return Ok(Vec::new()); // The emulator has not created it yet.
        };
        let what = || format!("cannot read {}", self.path.display());
        file.seek(SeekFrom::Start(self.offset)).context(what)?;
        let mut fresh = Vec::new();
        let count = file.read_to_end(&mut fresh).context(what)?;
        self.offset += count as u64;
        if count > 0 {
            self.last_growth = Instant::now();
        }
        self.partial.extend_from_slice(&fresh);
        Ok(split_lines(&mut self.partial))
    }

    /// An unterminated result line that has not grown for `quiet`: some guests print the result line
    /// without a newline and then halt or power off.
    pub fn quiet_result_line(&mut self, quiet: Duration) -> Option<String> {
        let pending = clean(&self.partial);
        if self.last_growth.elapsed() < quiet || !pending.trim_start().starts_with(RESULT_MARKER) {
            return None;
        }
        self.partial.clear();
        Some(pending)
    }

    /// The unterminated rest, once the emulator has stopped.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        let line = clean(&rest);
        (!line.trim().is_empty()).then_some(line)
    }
}

/// Removes and returns every complete line at the front of `buffer`, cleaned.
fn split_lines(buffer: &mut Vec<u8>) -> Vec<String> {
    let Some(last_newline) = buffer.iter().rposition(|&byte| byte == b'\n') else {
        return Vec::new();
    };
    let done: Vec<u8> = buffer.drain(..=last_newline).collect();
    done[..last_newline]
        .split(|&byte| byte == b'\n')
        .map(clean)
        .collect()
}

/// Decodes one line and strips terminal escape sequences (OVMF draws its console with them) and control bytes.
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            skip_escape(&mut chars);
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Skips an escape sequence after ESC: `ESC [ params intermediates final` or `ESC x`.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    if chars.next_if_eq(&'[').is_none() {
        chars.next();
        return;
    }
    while chars.next_if(|c| ('\x20'..='\x3f').contains(c)).is_some() {}
    chars.next_if(|c| ('\x40'..='\x7e').contains(c));
}

/// Drops terminal escape sequences from a byte stream that arrives in arbitrary chunks (for showing
/// the guest console on the user's terminal without OVMF clearing or recolouring it).
#[derive(Default)]
pub struct EscapeFilter {
    state: EscapeState,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    #[default]
    Text,
    /// After ESC.
    Escape,
    /// Inside `ESC [ ...` until its final byte.
    Csi,
}

impl EscapeFilter {
    pub fn filter(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        for &byte in chunk {
            self.state = match (self.state, byte) {
                (EscapeState::Text, 0x1b) => EscapeState::Escape,
                (EscapeState::Text, _) => {
                    out.push(byte);
                    EscapeState::Text
                }
                (EscapeState::Escape, b'[') => EscapeState::Csi,
                (EscapeState::Escape, _) => EscapeState::Text,
                (EscapeState::Csi, 0x40..=0x7e) => EscapeState::Text,
                (EscapeState::Csi, _) => EscapeState::Csi,
            };
        }
        out
    }
}

/// The final verdict line: `RAMPART-RESULT: PASS|FAIL word word key=value ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    pub pass: bool,
    pub words: Vec<String>,
}

impl ResultLine {
    /// Parses a serial line; `None` unless it starts with the marker and a PASS/FAIL verdict.
    pub fn parse(line: &str) -> Option<ResultLine> {
        let rest = line.trim().strip_prefix(RESULT_MARKER)?;
        let mut words = rest.split_whitespace();
        let pass = match words.next()? {
            "PASS" => true,
            "FAIL" => false,
            _ => return None,
        };
        let words = words.map(String::from).collect();
        Some(ResultLine { pass, words })
    }

    /// The value of `key=value` on the line.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.words
            .iter()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn verdict(&self) -> &'static str {
        if self.pass {
            "PASS"
        } else {
            "FAIL"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_complete_lines_and_keeps_the_rest() {
        let mut buffer = b"one\r\ntwo\nthr".to_vec();
        assert_eq!(split_lines(&mut buffer), vec!["one", "two"]);
        assert_eq!(buffer, b"thr");
        buffer.extend_from_slice(b"ee\n");
        assert_eq!(split_lines(&mut buffer), vec!["three"]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn strips_escapes_and_controls() {
        let raw = b"\x1b[0m\x1b[37m\x1b[40m[fw] Rampart firmware\x1b[2J\x07";
        assert_eq!(clean(raw), "[fw] Rampart firmware");
        assert_eq!(clean(b"\x1bcX"), "X");
    }

    #[test]
    fn filters_escapes_across_chunks() {
        let mut filter = EscapeFilter::default();
        let mut out = filter.filter(b"a\x1b[0");
        out.extend(filter.filter(b";37mb\x1bcc\r\nsh> "));
        assert_eq!(out, b"abc\r\nsh> ");
    }

    #[test]
    fn parses_result_lines() {
        let line =
            ResultLine::parse("RAMPART-RESULT: PASS mode=hv hypervisor=rampart ticks=42").unwrap();
        assert!(line.pass);
        assert_eq!(line.value("ticks"), Some("42"));
        assert_eq!(line.value("mode"), Some("hv"));
        assert_eq!(line.value("tick"), None);
        let fail = ResultLine::parse("  RAMPART-RESULT: FAIL boot-error").unwrap();
        assert!(!fail.pass);
        assert_eq!(fail.words, vec!["boot-error"]);
        assert_eq!(ResultLine::parse("RAMPART-RESULT: MAYBE"), None);
        assert_eq!(ResultLine::parse("[kernel] RAMPART-RESULT: PASS"), None);
    }

    #[test]
    fn tail_follows_a_growing_file() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("xtask-tail-{}.log", std::process::id()));
        let mut tail = SerialTail::new(path.clone());
        assert!(tail.poll().unwrap().is_empty());
        let mut file = File::create(&path).unwrap();
        file.write_all(b"[fw] a\n[fw] b").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["[fw] a"]);
        file.write_all(b"\nRAMPART-RESULT: PASS\n").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["[fw] b", "RAMPART-RESULT: PASS"]);
        assert_eq!(tail.finish(), None);
        file.write_all(b"RAMPART-RESULT: FAIL boot-error").unwrap();
        assert!(tail.poll().unwrap().is_empty());
        assert_eq!(tail.quiet_result_line(Duration::from_secs(60)), None);
        let line = tail.quiet_result_line(Duration::ZERO);
        assert_eq!(line.as_deref(), Some("RAMPART-RESULT: FAIL boot-error"));
        std::fs::remove_file(&path).unwrap();
    }
}
