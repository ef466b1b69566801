//! Kernel ELF validation (`elf::validate`): mutated valid kernels and random program headers
//! never panic, and every accepted image has its segments inside the file, within 52-bit
//! physical memory, sorted without overlap, and its entry point in an executable segment.

use proptest::prelude::*;
use rampart_loader::elf::{validate, KernelImage, MAX_SEGMENTS, PHYS_ADDR_LIMIT};

use crate::elf_builder::{build, Ph, DATA, FILE_LEN, PT_LOAD, TEXT};

/// What every accepted image must satisfy.
fn check_accepted(file: &[u8], image: &KernelImage) -> Result<(), TestCaseError> {
    let segments = image.segments();
    prop_assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    for s in segments {
        let file_end = s.offset.checked_add(s.filesz);
        prop_assert!(
            file_end.is_some_and(|end| end <= file.len() as u64),
            "{s:?} outside the file"
        );
        prop_assert!(s.filesz <= s.memsz);
        prop_assert!(s
            .paddr
            .checked_add(s.memsz)
            .is_some_and(|end| end <= PHYS_ADDR_LIMIT));
        prop_assert!(s.vaddr.checked_add(s.memsz).is_some());
    }
    for pair in segments.windows(2) {
        prop_assert!(pair[0].paddr_end() <= pair[1].paddr, "overlap {pair:?}");
    }
    let entry = image.entry;
    let home = segments
        .iter()
        .find(|s| s.flags.executable() && s.vaddr <= entry && entry - s.vaddr < s.memsz);
    prop_assert!(
        home.is_some(),
        "entry {entry:#x} outside every executable segment"
    );
    let home = home.unwrap();
    prop_assert_eq!(image.entry_paddr, home.paddr + (entry - home.vaddr));
    // The page runs cover every segment.
    let (runs, count) = image.page_runs();
    for s in segments {
        prop_assert!(runs[..count]
            .iter()
            .any(|&(start, pages)| start <= s.paddr && s.paddr_end() <= start + pages * 4096));
    }
    Ok(())
}

fn check(file: &[u8]) -> Result<(), TestCaseError> {
    match validate(file) {
        Ok(image) => check_accepted(file, &image),
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            Ok(())
        }
    }
}

/// Values near the checks' edges.
fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            0, 1, 0x10, 0x20, 0x1000, 0x2000, 0x3000, 0x0100_0000, 0x0100_0004, 0x0100_2000,
            PHYS_ADDR_LIMIT - 0x1000, PHYS_ADDR_LIMIT, 0xffff_ffff_8100_0000,
            u64::MAX - 4, u64::MAX,
        ]),
        1 => any::<u64>(),
        1 => 0u64..0x4000,
    ]
}

fn program_header() -> impl Strategy<Value = Ph> {
    (
        prop_oneof![4 => Just(PT_LOAD), 1 => any::<u32>()],
        0u32..8,
        interesting_u64(),
        interesting_u64(),
        interesting_u64(),
        interesting_u64(),
        interesting_u64(),
        interesting_u64(),
    )
        .prop_map(
            |(p_type, flags, offset, vaddr, paddr, filesz, memsz, align)| Ph {
                p_type,
                flags,
                offset,
                vaddr,
                paddr,
                filesz,
                memsz,
                align,
            },
        )
}

/// One mutation of a file: a byte, a 2/4/8-byte field in the headers, or the length.
#[derive(Clone, Debug)]
enum Mutation {
    Byte { at: usize, value: u8 },
    Field { at: usize, width: usize, value: u64 },
    Truncate(usize),
    Extend(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (0usize..0x200, any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        3 => (0usize..0x100, proptest::sample::select(vec![2usize, 4, 8]), interesting_u64())
            .prop_map(|(at, width, value)| Mutation::Field { at, width, value }),
        1 => (0usize..FILE_LEN).prop_map(Mutation::Truncate),
        1 => (1usize..0x2000).prop_map(Mutation::Extend),
    ]
}

fn apply(file: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::Byte { at, value } => {
            if let Some(byte) = file.get_mut(at) {
                *byte = value;
            }
        }
        Mutation::Field { at, width, value } => {
            if let Some(field) = file.get_mut(at..at + width) {
                field.copy_from_slice(&value.to_le_bytes()[..width]);
            }
        }
        Mutation::Truncate(len) => file.truncate(len),
        Mutation::Extend(len) => file.resize(file.len() + len, 0xa5),
    }
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn mutated_valid_kernels(mutations in proptest::collection::vec(mutation(), 1..8)) {
        let mut file = build(0x0100_0004, &[TEXT, DATA]);
        for m in &mutations {
            apply(&mut file, m);
        }
        check(&file)?;
    }

    #[test]
    fn random_program_headers(
        entry in interesting_u64(),
        headers in proptest::collection::vec(program_header(), 0..=MAX_SEGMENTS + 1),
        with_text in any::<bool>(),
    ) {
        let mut headers = headers;
        if with_text {
            headers.insert(0, TEXT);
        }
        check(&build(entry, &headers))?;
    }

    #[test]
    fn random_bytes(file in proptest::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        let mut file = file;
        if magic && file.len() >= 6 {
            file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        }
        check(&file)?;
    }
}

#[test]
fn the_unmutated_kernel_is_accepted() {
    let file = build(0x0100_0004, &[TEXT, DATA]);
    let image = validate(&file).unwrap();
    assert_eq!(image.segments().len(), 2);
}
