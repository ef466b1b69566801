//! Host-side fuzz target for the initrd archive (`Initrd::parse`, issue 13): random bytes and
//! mutated valid archives never panic, and every file of an accepted archive lies inside it.
//!
//! `RAMPART_FUZZ_CASES=N cargo test -p rampart-kernel-abi --test fuzz` runs N cases per
//! property (README "Robustness").

use proptest::prelude::*;
use rampart_fuzz::config;
use rampart_kernel_abi::initrd::{
    Initrd, InitrdError, ALIGN, ENTRY_SIZE, HEADER_SIZE, MAGIC, MAX_FILES, NAME_LEN,
};

/// The archive layout of the module docs, written independently of the crate's `build`
/// (which exists only with the `std` feature).
fn build(files: &[(String, Vec<u8>, [u8; 32])]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = (HEADER_SIZE + files.len() * ENTRY_SIZE).next_multiple_of(ALIGN);
    let mut offsets = Vec::new();
    for (name, data, sha) in files {
        let mut raw_name = [0u8; NAME_LEN];
        raw_name[..name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&raw_name);
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(sha);
        offsets.push(offset);
        offset = (offset + data.len()).next_multiple_of(ALIGN);
    }
    for ((_, data, _), at) in files.iter().zip(offsets) {
        out.resize(at, 0);
        out.extend_from_slice(data);
    }
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    out
}

/// What every accepted archive must satisfy.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let archive = match Initrd::parse(bytes) {
        Ok(archive) => archive,
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            if let InitrdError::BadEntry { index } = error {
                prop_assert!(index < MAX_FILES);
            }
            return Ok(());
        }
    };
    prop_assert!(archive.len() <= MAX_FILES);
    prop_assert!(bytes.len() >= HEADER_SIZE + archive.len() * ENTRY_SIZE);
    // Every entry was validated: none is skipped later.
    prop_assert_eq!(archive.files().count(), archive.len());
    let range = bytes.as_ptr_range();
    for file in archive.files() {
        prop_assert_eq!(file.offset % ALIGN, 0);
        let end = file.offset.checked_add(file.data.len());
        prop_assert!(
            end.is_some_and(|end| end <= bytes.len()),
            "{} past the end",
            file.name
        );
        // The data is the archive's own bytes at `offset`, not a copy or another slice.
        prop_assert!(
            range.start <= file.data.as_ptr() && file.data.as_ptr_range().end <= range.end
        );
        prop_assert_eq!(file.data.as_ptr(), bytes[file.offset..].as_ptr());
        prop_assert!(!file.name.is_empty() && file.name.len() <= NAME_LEN);
        prop_assert!(!file.name.contains('\0'));
        let found = archive.find(file.name);
        prop_assert!(found.is_some_and(|f| f.name == file.name));
    }
    Ok(())
}

fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>, [u8; 32])>> {
    proptest::collection::vec(
        (
            "[a-z0-9_.-]{1,32}",
            // Lengths across page boundaries; the contents matter little, so cheap to make.
            (0usize..6000, any::<u8>())
                .prop_map(|(len, seed)| (0..len).map(|i| seed.wrapping_add(i as u8)).collect()),
            any::<[u8; 32]>(),
        ),
        0..5,
    )
}

/// One mutation: a byte or a little-endian field in the header and entry table, or the length.
#[derive(Clone, Debug)]
enum Mutation {
    Byte { at: usize, value: u8 },
    Field { at: usize, value: u64 },
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field_value = prop_oneof![
        Just(0u64),
        Just(1),
        Just(ALIGN as u64),
        Just(2 * ALIGN as u64),
        Just(MAX_FILES as u64 + 1),
        Just(u64::MAX),
        Just(u64::MAX - ALIGN as u64 + 1),
        Just(1 << 63),
        any::<u64>(),
    ];
    let table = HEADER_SIZE + 5 * ENTRY_SIZE;
    prop_oneof![
        3 => (0usize..table, any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        3 => (0usize..table, field_value).prop_map(|(at, value)| Mutation::Field { at, value }),
        1 => (0usize..5 * ALIGN).prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::Byte { at, value } => {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        Mutation::Field { at, value } => {
            let len = bytes.len().saturating_sub(at).min(8);
            if let Some(field) = bytes.get_mut(at..at + len) {
                field.copy_from_slice(&value.to_le_bytes()[..len]);
            }
        }
        Mutation::Truncate(len) => bytes.truncate(len),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024), count in 0u32..8) {
        // Half the time past the magic, with a small count, so the entries get parsed.
        let mut bytes = bytes;
        if count > 0 && bytes.len() >= HEADER_SIZE {
            bytes[..16].copy_from_slice(&MAGIC);
            bytes[16..20].copy_from_slice(&(count - 1).to_le_bytes());
        }
        check(&bytes)?;
    }

    #[test]
    fn valid_archives_round_trip(files in files()) {
        let bytes = build(&files);
        let archive = Initrd::parse(&bytes).unwrap();
        prop_assert_eq!(archive.len(), files.len());
        for (file, (name, data, sha)) in archive.files().zip(&files) {
            prop_assert_eq!(file.name, name.as_str());
            prop_assert_eq!(file.data, data.as_slice());
            prop_assert_eq!(&file.sha256, sha);
        }
        check(&bytes)?;
    }

    #[test]
    fn mutated_valid_archives(files in files(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = build(&files);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check(&bytes)?;
    }
}
