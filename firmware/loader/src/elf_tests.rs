use super::*;

#[path = "../tests/support/elf_builder.rs"]
mod elf_builder;
use elf_builder::{build, Ph, DATA, TEXT};

fn good() -> Vec<u8> {
    build(0x0100_0004, &[TEXT, DATA])
}

#[test]
fn good_kernel_is_accepted() {
    let image = validate(&good()).unwrap();
    assert_eq!(image.entry, 0x0100_0004);
    assert_eq!(image.entry_paddr, 0x0100_0004);
    assert_eq!(image.segments().len(), 2);
    let data = image.segments()[1];
    assert_eq!(
        (data.paddr, data.offset, data.filesz, data.memsz),
        (0x0100_2000, 0x2000, 0x10, 0x3000)
    );
    assert!(data.flags.writable() && !data.flags.executable() && data.flags.readable());
    assert_eq!(image.phys_range(), (0x0100_0000, 0x0100_5000));
    let (runs, count) = image.page_runs();
    assert_eq!(&runs[..count], &[(0x0100_0000, 1), (0x0100_2000, 3)]);
}

#[test]
fn higher_half_entry_is_translated_to_physical() {
    let text = Ph {
        vaddr: 0xffff_ffff_8100_0000,
        ..TEXT
    };
    let image = validate(&build(0xffff_ffff_8100_0010, &[text])).unwrap();
    assert_eq!(image.entry_paddr, 0x0100_0010);
}

#[test]
fn segments_sharing_a_page_form_one_run() {
    let text = Ph {
        memsz: 0x800,
        filesz: 0x800,
        ..TEXT
    };
    let data = Ph {
        offset: 0x1800,
        vaddr: 0x0100_0800,
        paddr: 0x0100_0800,
        align: 0x800,
        ..DATA
    };
    let image = validate(&build(0x0100_0000, &[data, text])).unwrap();
    let (runs, count) = image.page_runs();
    assert_eq!(&runs[..count], &[(0x0100_0000, 4)]);
}

#[test]
fn header_errors() {
    let mut file = good();
    file[0] = 0x7e;
    assert_eq!(validate(&file), Err(ElfError::BadMagic));
    assert_eq!(ElfError::BadMagic.to_string(), "bad ELF magic");
    let mut file = good();
    file[4] = 1;
    assert_eq!(validate(&file), Err(ElfError::NotElf64));
    let mut file = good();
    file[5] = 2;
    assert_eq!(validate(&file), Err(ElfError::NotLittleEndian));
    let mut file = good();
    file[18] = 40; // EM_ARM
    assert_eq!(validate(&file), Err(ElfError::NotX86_64 { machine: 40 }));
    let mut file = good();
    file[16] = 3; // ET_DYN
    assert_eq!(
        validate(&file),
        Err(ElfError::NotExecutable { file_type: 3 })
    );
    assert_eq!(validate(&good()[..40]), Err(ElfError::TooShort { len: 40 }));
    assert_eq!(validate(b"MZ"), Err(ElfError::BadMagic));
    assert_eq!(validate(b""), Err(ElfError::TooShort { len: 0 }));
}

#[test]
fn header_tables_past_end_or_malformed() {
    let mut file = good();
    file.truncate(100);
    assert_eq!(validate(&file), Err(ElfError::HeaderTablePastEnd));
    let mut file = good();
    file[56] = 0xFF; // e_phnum
    assert_eq!(validate(&file), Err(ElfError::HeaderTablePastEnd));
    let mut file = good();
    file[40..48].copy_from_slice(&0x2F00u64.to_le_bytes()); // e_shoff
    file[60] = 5; // e_shnum: 0x2F00 + 5 * 64 > 0x3000
    file[58] = 64; // e_shentsize
    assert_eq!(validate(&file), Err(ElfError::HeaderTablePastEnd));
    file[58] = 3; // a bogus section header size
    file[60] = 1;
    assert_eq!(validate(&file), Err(ElfError::Malformed));
}

#[test]
fn segment_errors() {
    let note = Ph { p_type: 4, ..TEXT };
    assert_eq!(
        validate(&build(0x0100_0000, &[note])),
        Err(ElfError::NoLoadSegment)
    );
    assert_eq!(
        validate(&build(0x0100_0000, &[])),
        Err(ElfError::NoLoadSegment)
    );
    let past = Ph {
        filesz: 0x2001,
        memsz: 0x3000,
        ..DATA
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[TEXT, past])),
        Err(ElfError::SegmentPastEnd { index: 1 })
    );
    let wrap_file = Ph {
        offset: u64::MAX - 4,
        ..DATA
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[TEXT, wrap_file])),
        Err(ElfError::SegmentPastEnd { index: 1 })
    );
    let fat = Ph {
        filesz: 0x30,
        memsz: 0x20,
        ..TEXT
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[fat])),
        Err(ElfError::FileSizeExceedsMemSize { index: 0 })
    );
    let skew = Ph {
        vaddr: 0x0100_0100,
        paddr: 0x0100_0100,
        ..TEXT
    };
    assert_eq!(
        validate(&build(0x0100_0100, &[skew])),
        Err(ElfError::BadAlignment { index: 0 })
    );
    let odd_align = Ph {
        align: 0x3000,
        ..TEXT
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[odd_align])),
        Err(ElfError::BadAlignment { index: 0 })
    );
    let wrap = Ph {
        paddr: 0xffff_ffff_ffff_f000,
        vaddr: 0xffff_ffff_ffff_f000,
        memsz: 0x2000,
        ..DATA
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[TEXT, wrap])),
        Err(ElfError::AddressWraps { index: 1 })
    );
    let high = Ph {
        paddr: PHYS_ADDR_LIMIT,
        ..DATA
    };
    assert_eq!(
        validate(&build(0x0100_0000, &[TEXT, high])),
        Err(ElfError::AddressWraps { index: 1 })
    );
}

#[test]
fn overlapping_segments_are_rejected() {
    let data = Ph {
        paddr: 0x0100_0000,
        ..DATA
    };
    let error = validate(&build(0x0100_0000, &[TEXT, data])).unwrap_err();
    assert!(matches!(error, ElfError::Overlap { .. }), "{error:?}");
    assert!(error.to_string().contains("overlap"));
}

#[test]
fn too_many_segments() {
    let headers: Vec<Ph> = (0..=MAX_SEGMENTS as u64)
        .map(|i| Ph {
            vaddr: 0x0100_0000 + i * 0x1000,
            paddr: 0x0100_0000 + i * 0x1000,
            ..TEXT
        })
        .collect();
    assert_eq!(
        validate(&build(0x0100_0000, &headers)),
        Err(ElfError::TooManySegments)
    );
}

#[test]
fn entry_must_be_in_an_executable_segment() {
    let error = validate(&build(0x0100_2000, &[TEXT, DATA])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "entry point 0x1002000 is not inside an executable segment"
    );
    assert!(validate(&build(0x0100_0020, &[TEXT, DATA])).is_err());
    assert!(validate(&build(0, &[TEXT, DATA])).is_err());
}

#[test]
fn truncations_and_random_corruption_never_panic() {
    let file = good();
    for len in 0..file.len() {
        let _ = validate(&file[..len]);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut corrupt = file.clone();
        for _ in 0..(next() % 8 + 1) {
            // Mostly hit the headers, where the parsing happens.
            let at = (next() % 0x200) as usize;
            corrupt[at] = next() as u8;
        }
        if let Err(error) = validate(&corrupt) {
            let _ = error.to_string();
        }
        let random: Vec<u8> = (0..next() % 300).map(|_| next() as u8).collect();
        let _ = validate(&random);
    }
}
