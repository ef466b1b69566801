//! Validation of ring-3 program ELFs (pure): static ET_EXEC x86-64 little-endian ELF64, PT_LOAD
//! segments inside the file and inside user space, file offset congruent to the address within a
//! page, never writable and executable at once, entry in an executable segment. Anything else is
//! `Errno::NotExecutable`.

use crate::mm::cpu_roots::LOW_USER_TOP;
use crate::mm::layout::USER_BOTTOM;
use crate::mm::page_table::PAGE_SIZE;
use rampart_kernel_abi::syscall::Errno;

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
/// At most this many program headers are looked at.
pub const MAX_SEGMENTS: usize = 16;

/// One loadable segment, checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub writable: bool,
    pub executable: bool,
}

/// A validated program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    pub entry: u64,
    pub segments: [Segment; MAX_SEGMENTS],
    pub count: usize,
}

impl Program {
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    /// The first page after the highest segment: where the heap (brk) starts.
    pub fn brk_start(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| (s.vaddr + s.memsz).next_multiple_of(PAGE_SIZE))
            .max()
            .unwrap_or(USER_BOTTOM)
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The description `file` carries ([`rampart_kernel_abi::about`]): the record at the start of
/// its first read-only (neither writable nor executable) segment, if well formed.
pub fn description<'a>(file: &'a [u8], program: &Program) -> Option<&'a str> {
    let segment = program
        .segments()
        .iter()
        .find(|s| !s.writable && !s.executable)?;
    // parse() checked that every segment's file bytes lie inside the file.
    let start = usize::try_from(segment.offset).ok()?;
    let end = start.checked_add(usize::try_from(segment.filesz).ok()?)?;
    rampart_kernel_abi::about::read(file.get(start..end)?)
}

/// Validates `file`; never panics.
pub fn parse(file: &[u8]) -> Result<Program, Errno> {
    parse_inner(file).ok_or(Errno::NotExecutable)
}

fn parse_inner(file: &[u8]) -> Option<Program> {
    let header = file.get(..HEADER_SIZE)?;
    if header[..4] != ELF_MAGIC || header[4] != ELFCLASS64 || header[5] != ELFDATA2LSB {
        return None;
    }
    if u16_at(header, 16)? != ET_EXEC || u16_at(header, 18)? != EM_X86_64 {
        return None;
    }
    let entry = u64_at(header, 24)?;
    let phoff = usize::try_from(u64_at(header, 32)?).ok()?;
    let phentsize = usize::from(u16_at(header, 54)?);
    let phnum = usize::from(u16_at(header, 56)?);
    if phentsize != PROGRAM_HEADER_SIZE || phnum > 64 {
        return None;
    }
    let mut program = Program {
        entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    for index in 0..phnum {
        let at = phoff.checked_add(index * PROGRAM_HEADER_SIZE)?;
        let raw = file.get(at..at.checked_add(PROGRAM_HEADER_SIZE)?)?;
        if u32_at(raw, 0)? != PT_LOAD {
            continue;
        }
        let flags = u32_at(raw, 4)?;
        let segment = Segment {
            offset: u64_at(raw, 8)?,
            vaddr: u64_at(raw, 16)?,
            filesz: u64_at(raw, 32)?,
            memsz: u64_at(raw, 40)?,
            writable: flags & PF_W != 0,
            executable: flags & PF_X != 0,
        };
        if !segment_ok(&segment, file.len() as u64) || program.count == MAX_SEGMENTS {
            return None;
        }
        program.segments[program.count] = segment;
        program.count += 1;
    }
    let entry_ok = program
        .segments()
        .iter()
        .any(|s| s.executable && s.vaddr <= entry && entry < s.vaddr + s.memsz);
    entry_ok.then_some(program)
}

fn segment_ok(s: &Segment, file_len: u64) -> bool {
    let in_file = s
        .offset
        .checked_add(s.filesz)
        .is_some_and(|end| end <= file_len);
    // The low user slot (`mm::cpu_roots`: a CPU's lower half has only two slots).
    let in_user = s.vaddr >= USER_BOTTOM
        && s.vaddr
            .checked_add(s.memsz)
            .is_some_and(|end| end <= LOW_USER_TOP);
    in_file
        && in_user
        && s.filesz <= s.memsz
        && s.memsz > 0
        && s.vaddr % PAGE_SIZE == s.offset % PAGE_SIZE
        && !(s.writable && s.executable)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::vec::Vec;

    /// A minimal ELF: one R-X segment at 0x400000 with `code`, one RW segment after it.
    pub fn sample(code: &[u8]) -> Vec<u8> {
        let mut file = std::vec![0u8; 0x2000];
        file[..4].copy_from_slice(&ELF_MAGIC);
        file[4] = ELFCLASS64;
        file[5] = ELFDATA2LSB;
        file[6] = 1;
        file[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        file[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        file[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
        file[32..40].copy_from_slice(&64u64.to_le_bytes());
        file[54..56].copy_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
        file[56..58].copy_from_slice(&2u16.to_le_bytes());
        let mut header =
            |at: usize, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64| {
                file[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
                file[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
                file[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
                file[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
                file[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
                file[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
            };
        header(64, 5, 0x1000, 0x40_1000, 0x1000, 0x1000);
        header(64 + 56, 6, 0x1000, 0x40_2000, 0x10, 0x3000);
        file[0x1000..0x1000 + code.len()].copy_from_slice(code);
        file
    }

    #[test]
    fn a_good_program_parses() {
        let program = parse(&sample(b"\xeb\xfe")).unwrap();
        assert_eq!(program.entry, 0x40_1000);
        assert_eq!(program.count, 2);
        assert!(program.segments[0].executable && !program.segments[0].writable);
        assert_eq!(program.brk_start(), 0x40_5000);
    }

    #[test]
    fn the_description_is_read_from_the_read_only_segment() {
        let record: [u8; 16] = rampart_kernel_abi::about::record("tool");
        let mut file = sample(&record);
        let program = parse(&file).unwrap();
        assert_eq!(description(&file, &program), None, "no read-only segment");
        file[64 + 56 + 4] = 4; // the second segment read-only
        let program = parse(&file).unwrap();
        assert_eq!(description(&file, &program), Some("tool"));
        file[0x1000] = b'X';
        assert_eq!(description(&file, &program), None, "no magic");
    }

    #[test]
    fn bad_programs_are_not_executable() {
        let good = sample(b"");
        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut file = good.clone();
            edit(&mut file);
            parse(&file)
        };
        let no = Err(Errno::NotExecutable);
        assert_eq!(bad(&|f| f[0] = 0), no, "magic");
        assert_eq!(bad(&|f| f[16] = 3), no, "ET_DYN");
        assert_eq!(bad(&|f| f[18] = 3), no, "machine");
        assert_eq!(
            bad(&|f| f[24..32].copy_from_slice(&0x40_2000u64.to_le_bytes())),
            no,
            "entry in data"
        );
        assert_eq!(bad(&|f| f[64 + 4] = 7), no, "W+X");
        assert_eq!(
            bad(&|f| f[64 + 16..64 + 24].copy_from_slice(&0xffff_8000_0000_0000u64.to_le_bytes())),
            no,
            "kernel half"
        );
        assert_eq!(
            bad(&|f| f[64 + 16..64 + 24].copy_from_slice(&0u64.to_le_bytes())),
            no,
            "page 0"
        );
        assert_eq!(
            bad(&|f| f[64 + 16..64 + 24].copy_from_slice(&(1u64 << 39).to_le_bytes())),
            no,
            "above the low user slot"
        );
        assert_eq!(
            bad(&|f| f[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes())),
            no,
            "filesz"
        );
        assert_eq!(bad(&|f| f[64 + 8] = 8), no, "offset not congruent");
        for cut in 0..200 {
            assert!(parse(&good[..cut]).is_err());
        }
    }
}
