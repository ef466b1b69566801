//! A program's one-line description, carried in its own ELF so that the shell's `help` lists what
//! the initrd holds (and no list of programs is written anywhere else).
//!
//! The record is the first bytes of the program's read-only PT_LOAD segment (`guest-user/user.ld`
//! puts the `.rampart_about` section first there; `rampart_user::entry!` emits it): [`MAGIC`],
//! the text's length as a little-endian u32, then the UTF-8 text. The kernel reads it with
//! [`read`]; a program without one has no description.

/// `RAMPDESC`.
pub const MAGIC: [u8; 8] = *b"RAMPDESC";
/// Bytes before the text.
pub const HEADER: usize = 12;
/// The longest description (one line of `help`).
pub const MAX_TEXT: usize = 72;

/// The description at the start of `segment` (the file bytes of the read-only segment), if it
/// has a well-formed one: the magic, a length of at most [`MAX_TEXT`] inside the segment, UTF-8
/// text on one line.
pub fn read(segment: &[u8]) -> Option<&str> {
    if segment.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let length = u32::from_le_bytes(segment.get(8..HEADER)?.try_into().ok()?) as usize;
    if length > MAX_TEXT {
        return None;
    }
    let text = core::str::from_utf8(segment.get(HEADER..HEADER + length)?).ok()?;
    match text.chars().any(char::is_control) {
        true => None,
        false => Some(text),
    }
}

/// The record's bytes for `text` (what `rampart_user::entry!` places in the program); `N` must
/// be `HEADER + text.len()`. Compile-time: the program's text is a constant.
pub const fn record<const N: usize>(text: &str) -> [u8; N] {
    let text = text.as_bytes();
    assert!(N == HEADER + text.len(), "record length is HEADER + text");
    assert!(
        text.len() <= MAX_TEXT,
        "a description is at most MAX_TEXT bytes"
    );
    let mut bytes = [0u8; N];
    let mut at = 0;
    while at < MAGIC.len() {
        bytes[at] = MAGIC[at];
        at += 1;
    }
    let length = (text.len() as u32).to_le_bytes();
    let mut at = 0;
    while at < 4 {
        bytes[8 + at] = length[at];
        at += 1;
    }
    let mut at = 0;
    while at < text.len() {
        bytes[HEADER + at] = text[at];
        at += 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back() {
        const TEXT: &str = "the interactive shell";
        let record: [u8; HEADER + TEXT.len()] = record(TEXT);
        let mut segment = record.to_vec();
        segment.extend_from_slice(b"\0\0rest of rodata");
        assert_eq!(read(&segment), Some(TEXT));
    }

    #[test]
    fn malformed_records_have_no_description() {
        assert_eq!(read(b""), None);
        assert_eq!(read(b"RAMPDES"), None);
        assert_eq!(read(b"XAMPDESC\x02\0\0\0ab"), None);
        // Longer than the segment, longer than MAX_TEXT, not UTF-8, two lines.
        assert_eq!(read(b"RAMPDESC\x09\0\0\0ab"), None);
        assert_eq!(read(b"RAMPDESC\xff\0\0\0ab"), None);
        assert_eq!(read(b"RAMPDESC\x02\0\0\0\xff\xfe"), None);
        assert_eq!(read(b"RAMPDESC\x03\0\0\0a\nb"), None);
        assert_eq!(read(b"RAMPDESC\x00\0\0\0"), Some(""));
    }
}
