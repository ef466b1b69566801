//! The measured program text (`policy::program_text`): any initrd, including archives of
//! hostile ELF programs, parses without panic, and `allows` only ever grants whole-page steps
//! into the file bytes of a PF_X segment of a program inside the archive.

use proptest::prelude::*;
use rampart_boot_info::initrd::{build, Initrd};
use rampart_hypervisor::internals::program_text::ProgramText;

const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;

/// One program header: (type, flags, offset, filesz).
type Ph = (u32, u32, u64, u64);

/// An ELF64 executable of `len` bytes with these program headers.
fn program(len: usize, headers: &[Ph]) -> Vec<u8> {
    let mut f = vec![0u8; len.max(64 + headers.len() * 56)];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    f[16..18].copy_from_slice(&2u16.to_le_bytes());
    f[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    for (i, &(p_type, flags, offset, filesz)) in headers.iter().enumerate() {
        let at = 64 + i * 56;
        f[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
        f[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        f[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
        f[at + 40..at + 48].copy_from_slice(&filesz.to_le_bytes());
    }
    f
}

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..0x4000,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - PAGE + 1),
        1 => Just(1 << 63),
        1 => any::<u64>(),
    ]
}

fn header() -> impl Strategy<Value = Ph> {
    (
        prop_oneof![4 => Just(PT_LOAD), 1 => any::<u32>()],
        0u32..8,
        big(),
        big(),
    )
}

/// The executable segments' initrd ranges, computed here from the same archive.
fn text_ranges(archive: &[u8]) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let Ok(initrd) = Initrd::parse(archive) else {
        return ranges;
    };
    for file in initrd.files() {
        let Ok(elf) = elf::ElfBytes::<elf::endian::LittleEndian>::minimal_parse(file.data) else {
            continue;
        };
        for s in elf.segments().into_iter().flatten() {
            let end = s.p_offset.checked_add(s.p_filesz);
            if s.p_type == PT_LOAD
                && s.p_flags & PF_X != 0
                && s.p_filesz > 0
                && end.is_some_and(|end| end <= file.data.len() as u64)
            {
                let start = file.offset as u64 + s.p_offset;
                ranges.push((start, start + s.p_filesz));
            }
        }
    }
    ranges
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn grants_only_page_steps_into_text(
        programs in proptest::collection::vec((0usize..0x3000, proptest::collection::vec(header(), 0..4)), 0..3),
        probes in proptest::collection::vec((prop_oneof![0u64..0x10000, any::<u64>()], prop_oneof![1u64..0x3000, any::<u64>()]), 1..32),
    ) {
        let files: Vec<Vec<u8>> = programs.iter().map(|(len, headers)| program(*len, headers)).collect();
        let named: Vec<(String, &[u8], [u8; 32])> =
            files.iter().enumerate().map(|(i, f)| (format!("p{i}"), f.as_slice(), [0; 32])).collect();
        let entries: Vec<(&str, &[u8], [u8; 32])> = named.iter().map(|(n, f, s)| (n.as_str(), *f, *s)).collect();
        let archive = build(&entries);
        let text = ProgramText::of_initrd(&archive);
        let ranges = text_ranges(&archive);
        prop_assert!(text.segments() <= ranges.len());
        let mut probes = probes;
        // Also probe every segment's first and last page.
        for &(start, end) in &ranges {
            probes.push((start, PAGE));
            probes.push((start + (end - start - 1) / PAGE * PAGE, PAGE));
        }
        for (offset, length) in probes {
            if text.allows(offset, length) {
                let end = offset.checked_add(length);
                prop_assert!(end.is_some());
                prop_assert!(ranges.iter().any(|&(start, stop)| {
                    offset >= start
                        && (offset - start) % PAGE == 0
                        && offset < stop
                        && end.unwrap() <= start + (stop - start).next_multiple_of(PAGE)
                }), "grant of {length:#x} at {offset:#x} outside the text {ranges:x?}");
                prop_assert!(offset < archive.len() as u64);
            }
        }
    }

    #[test]
    fn random_archives(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = ProgramText::of_initrd(&bytes);
        prop_assert_eq!(text.segments(), 0);
    }
}

/// Found by `grants_only_page_steps_into_text`: a PF_X segment with p_offset = u64::MAX made
/// `of_initrd` add it to the file's offset before checking it, an overflow panic in debug
/// builds.
#[test]
fn segment_offset_near_u64_max_is_skipped() {
    let elf = program(0, &[(PT_LOAD, PF_X, u64::MAX, 1)]);
    let archive = build(&[("p0", &elf, [0; 32])]);
    assert_eq!(ProgramText::of_initrd(&archive).segments(), 0);
}
