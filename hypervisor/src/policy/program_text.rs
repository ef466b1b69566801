//! Where measured program text lies in the initrd: `GrantExecute` makes a page executable only
//! if it equals the initrd's bytes at a page-aligned offset inside the executable (PF_X)
//! segment of one of its ELF programs, never at any other offset (headers, data, or the
//! archive's own bytes). Parsed once at boot from the measured, read-only initrd.

use elf::abi::{PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use rampart_boot_info::initrd::Initrd;

/// At most this many executable segments over all programs (the rest are never granted).
pub const MAX_TEXT_SEGMENTS: usize = 64;
const PAGE: u64 = 4096;

/// The initrd offsets `[start, end)` of every executable segment's file bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramText(heapless::Vec<(u64, u64), MAX_TEXT_SEGMENTS>);

impl ProgramText {
    /// Parses the archive and each program in it; files that are not ELF contribute nothing.
    pub fn of_initrd(bytes: &[u8]) -> Self {
        let mut text = Self::default();
        let Ok(archive) = Initrd::parse(bytes) else {
            return text;
        };
        for file in archive.files() {
            let program = ElfBytes::<LittleEndian>::minimal_parse(file.data);
            let Some(segments) = program.ok().and_then(|p| p.segments()) else {
                continue;
            };
            for segment in segments
                .iter()
                .filter(|s| s.p_type == PT_LOAD && s.p_flags & PF_X != 0 && s.p_filesz > 0)
            {
                let in_file = segment.p_offset.checked_add(segment.p_filesz);
                let outside = in_file.is_none_or(|end| end > file.data.len() as u64);
                if outside {
                    continue;
                }
                // Only now is p_offset known to be inside the file: this cannot overflow.
                let start = file.offset as u64 + segment.p_offset;
                // Past MAX_TEXT_SEGMENTS a segment is not recorded (never granted).
                let _ = text.0.push((start, start + segment.p_filesz));
            }
        }
        text
    }

    /// True if a grant of `length` bytes compared with the initrd at `offset` starts a whole
    /// number of pages into an executable segment, stays inside the segment's file bytes, and
    /// ends on a page boundary of the segment or exactly at its end. A grant that ends
    /// anywhere else would make a prefix of a text page executable: code that stops
    /// mid-instruction, which no program has (the rest of that page must then be zero, which
    /// `matches_initrd` checks, so execution runs into zeros, not into other bytes).
    pub fn allows(&self, offset: u64, length: u64) -> bool {
        let Some(end) = offset.checked_add(length) else {
            return false;
        };
        self.0.iter().any(|&(start, stop)| {
            offset >= start
                && (offset - start).is_multiple_of(PAGE)
                && offset < stop
                && end <= stop
                && (end == stop || (end - start).is_multiple_of(PAGE))
        })
    }

    /// Executable segments found.
    pub fn segments(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 executable: header, one PT_LOAD R-X program header at file offset
    /// 0x1000 with `text_len` bytes, one RW- segment at 0x3000.
    fn program(text_len: u64) -> Vec<u8> {
        let mut f = vec![0u8; 0x4000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let mut header = |at: usize, flags: u32, offset: u64, size: u64| {
            f[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            f[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes()); // p_filesz
            f[at + 40..at + 48].copy_from_slice(&size.to_le_bytes()); // p_memsz
        };
        header(64, PF_X | 4, 0x1000, text_len);
        header(120, 4 | 2, 0x3000, 0x100);
        f
    }

    #[test]
    fn only_page_steps_into_text_are_allowed() {
        let elf = program(0x1800);
        let archive = rampart_boot_info::initrd::build(&[("prog", &elf, [0; 32])]);
        let text = ProgramText::of_initrd(&archive);
        assert_eq!(text.segments(), 1);
        let file = Initrd::parse(&archive).unwrap().find("prog").unwrap();
        let start = file.offset as u64 + 0x1000;
        assert!(text.allows(start, PAGE));
        assert!(
            text.allows(start + PAGE, 0x800),
            "the last page, up to the text's end"
        );
        assert!(text.allows(start, PAGE + 0x800), "both pages at once");
        assert!(
            !text.allows(start + PAGE, PAGE),
            "the last page past the text's end (other initrd bytes)"
        );
        assert!(
            !text.allows(file.offset as u64, PAGE),
            "the ELF header page"
        );
        assert!(!text.allows(start + 8, PAGE), "not a page step");
        assert!(!text.allows(start + 2 * PAGE, PAGE), "past the text");
        assert!(
            !text.allows(file.offset as u64 + 0x3000, PAGE),
            "the data segment"
        );
        assert!(!text.allows(u64::MAX, PAGE));
    }

    #[test]
    fn a_prefix_of_a_text_page_is_refused() {
        let elf = program(0x1800);
        let archive = rampart_boot_info::initrd::build(&[("prog", &elf, [0; 32])]);
        let text = ProgramText::of_initrd(&archive);
        let start = Initrd::parse(&archive)
            .unwrap()
            .find("prog")
            .unwrap()
            .offset as u64
            + 0x1000;
        for length in [1, 16, 0x7ff, 0x801, PAGE - 1] {
            assert!(
                !text.allows(start, length),
                "{length:#x} bytes of the first page"
            );
        }
        for length in [1, 16, 0x7ff] {
            assert!(
                !text.allows(start + PAGE, length),
                "{length:#x} bytes of the last page"
            );
        }
        assert!(
            !text.allows(start, PAGE + 16),
            "a page and a prefix of the next"
        );
    }

    #[test]
    fn garbage_gives_no_text() {
        assert_eq!(ProgramText::of_initrd(b"not an archive").segments(), 0);
        let archive = rampart_boot_info::initrd::build(&[("notes", b"plain text", [0; 32])]);
        assert_eq!(ProgramText::of_initrd(&archive).segments(), 0);
    }
}
