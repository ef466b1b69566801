//! Validation of the guest kernel ELF: what the firmware may load and jump to.
//!
//! The header checks are done by hand first so each gets its own message; the program headers
//! are then read with the `elf` crate (no_std, never panics on malformed input).

use core::fmt;

use elf::abi::{EM_X86_64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;

use crate::{align_up, PAGE_SIZE};

/// Most PT_LOAD segments a kernel may have.
pub const MAX_SEGMENTS: usize = 16;
/// Highest physical address (exclusive) x86-64 can address: 52 bits (SDM Vol. 3A 4.1.4).
pub const PHYS_ADDR_LIMIT: u64 = 1 << 52;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
/// Size of an ELF64 file header (also the offset past its last field, e_shstrndx).
const EHDR64_SIZE: usize = 64;

/// Why a kernel image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF64 header.
    TooShort {
        len: usize,
    },
    BadMagic,
    NotElf64,
    NotLittleEndian,
    NotX86_64 {
        machine: u16,
    },
    NotExecutable {
        file_type: u16,
    },
    /// The program or section header table runs past the end of the file.
    HeaderTablePastEnd,
    /// The `elf` crate could not read the headers (bad entry sizes, bad string table).
    Malformed,
    NoLoadSegment,
    TooManySegments,
    SegmentPastEnd {
        index: usize,
    },
    FileSizeExceedsMemSize {
        index: usize,
    },
    BadAlignment {
        index: usize,
    },
    AddressWraps {
        index: usize,
    },
    Overlap {
        first: usize,
        second: usize,
    },
    EntryNotExecutable {
        entry: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => write!(f, "file too short for an ELF64 header ({len} bytes)"),
            Self::BadMagic => f.write_str("bad ELF magic"),
            Self::NotElf64 => f.write_str("not a 64-bit ELF"),
            Self::NotLittleEndian => f.write_str("not a little-endian ELF"),
            Self::NotX86_64 { machine } => write!(f, "not an x86_64 ELF (e_machine {machine})"),
            Self::NotExecutable { file_type } => {
                write!(
                    f,
                    "not an executable ELF (e_type {file_type}, expected ET_EXEC)"
                )
            }
            Self::HeaderTablePastEnd => {
                f.write_str("header table runs past the end of the file (truncated?)")
            }
            Self::Malformed => f.write_str("malformed ELF headers"),
            Self::NoLoadSegment => f.write_str("no PT_LOAD segment"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} PT_LOAD segments"),
            Self::SegmentPastEnd { index } => {
                write!(f, "segment {index} runs past the end of the file")
            }
            Self::FileSizeExceedsMemSize { index } => {
                write!(f, "segment {index} has p_filesz > p_memsz")
            }
            Self::BadAlignment { index } => write!(f, "segment {index} is misaligned"),
            Self::AddressWraps { index } => {
                write!(f, "segment {index} address range wraps or exceeds 52 bits")
            }
            Self::Overlap { first, second } => {
                write!(
                    f,
                    "segments {first} and {second} overlap in physical memory"
                )
            }
            Self::EntryNotExecutable { entry } => {
                write!(
                    f,
                    "entry point {entry:#x} is not inside an executable segment"
                )
            }
        }
    }
}

/// Segment permissions (the ELF `p_flags` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SegmentFlags(pub u32);

impl SegmentFlags {
    pub const fn readable(self) -> bool {
        self.0 & PF_R != 0
    }
    pub const fn writable(self) -> bool {
        self.0 & PF_W != 0
    }
    pub const fn executable(self) -> bool {
        self.0 & PF_X != 0
    }
}

/// One PT_LOAD segment, checked: its file range is inside the file, and `paddr + memsz` and
/// `vaddr + memsz` neither wrap nor leave the 52-bit physical space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment {
    pub paddr: u64,
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub flags: SegmentFlags,
}

impl Segment {
    pub const fn paddr_end(&self) -> u64 {
        self.paddr + self.memsz
    }
    const fn contains_vaddr(&self, address: u64) -> bool {
        self.vaddr <= address && address < self.vaddr + self.memsz
    }
}

/// A validated kernel: entry point and load segments, sorted by physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    /// `e_entry`, a virtual address.
    pub entry: u64,
    /// `e_entry` translated through its segment to a physical address: what RIP must be under
    /// the boot identity map.
    pub entry_paddr: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl KernelImage {
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    /// Physical `[start, end)` from the lowest to the highest loaded byte.
    pub fn phys_range(&self) -> (u64, u64) {
        let start = self.segments().iter().map(|s| s.paddr).min().unwrap_or(0);
        let end = self
            .segments()
            .iter()
            .map(|s| s.paddr_end())
            .max()
            .unwrap_or(0);
        (start, end)
    }

    /// Page-granular physical runs to allocate: each segment rounded out to pages, runs that
    /// share or touch a page merged. Returns (runs, count) as (start, pages).
    pub fn page_runs(&self) -> ([(u64, u64); MAX_SEGMENTS], usize) {
        let mut runs = [(0u64, 0u64); MAX_SEGMENTS];
        let mut count: usize = 0;
        for segment in self.segments() {
            let start = crate::align_down(segment.paddr, PAGE_SIZE);
            // Cannot overflow: paddr_end < PHYS_ADDR_LIMIT was checked.
            let end = align_up(segment.paddr_end(), PAGE_SIZE).unwrap_or(PHYS_ADDR_LIMIT);
            match count.checked_sub(1).map(|last| &mut runs[last]) {
                Some(last) if start <= last.0 + last.1 * PAGE_SIZE => {
                    let last_end = (last.0 + last.1 * PAGE_SIZE).max(end);
                    last.1 = (last_end - last.0) / PAGE_SIZE;
                }
                _ => {
                    runs[count] = (start, (end - start) / PAGE_SIZE);
                    count += 1;
                }
            }
        }
        (runs, count)
    }
}

/// Validates `file` as a Rampart guest kernel.
pub fn validate(file: &[u8]) -> Result<KernelImage, ElfError> {
    check_ident(file)?;
    let parsed = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| ElfError::Malformed)?;
    let header = &parsed.ehdr;
    if header.e_machine != EM_X86_64 {
        return Err(ElfError::NotX86_64 {
            machine: header.e_machine,
        });
    }
    if header.e_type != ET_EXEC {
        return Err(ElfError::NotExecutable {
            file_type: header.e_type,
        });
    }
    let table = parsed.segments().ok_or(ElfError::NoLoadSegment)?;
    let mut image = KernelImage {
        entry: header.e_entry,
        entry_paddr: 0,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    for (index, header) in table.iter().enumerate() {
        if header.p_type != PT_LOAD || header.p_memsz == 0 {
            continue;
        }
        let segment = Segment {
            paddr: header.p_paddr,
            vaddr: header.p_vaddr,
            offset: header.p_offset,
            filesz: header.p_filesz,
            memsz: header.p_memsz,
            flags: SegmentFlags(header.p_flags),
        };
        check_segment(index, &segment, header.p_align, file.len())?;
        *image
            .segments
            .get_mut(image.count)
            .ok_or(ElfError::TooManySegments)? = segment;
        image.count += 1;
    }
    if image.count == 0 {
        return Err(ElfError::NoLoadSegment);
    }
    image.segments[..image.count].sort_unstable_by_key(|s| s.paddr);
    for pair in image.segments().windows(2) {
        if pair[0].paddr_end() > pair[1].paddr {
            return Err(ElfError::Overlap {
                first: segment_index(&table, &pair[0]),
                second: segment_index(&table, &pair[1]),
            });
        }
    }
    let entry = image.entry;
    let home = image
        .segments()
        .iter()
        .find(|s| s.flags.executable() && s.contains_vaddr(entry))
        .ok_or(ElfError::EntryNotExecutable { entry })?;
    image.entry_paddr = home.paddr + (entry - home.vaddr);
    Ok(image)
}

fn check_ident(file: &[u8]) -> Result<(), ElfError> {
    if file.len() < EHDR64_SIZE {
        // Still report a wrong magic first: it is the more useful message.
        if !file.starts_with(&ELF_MAGIC[..file.len().min(ELF_MAGIC.len())]) {
            return Err(ElfError::BadMagic);
        }
        return Err(ElfError::TooShort { len: file.len() });
    }
    if &file[..ELF_MAGIC.len()] != ELF_MAGIC {
        return Err(ElfError::BadMagic);
    }
    if file[EI_CLASS] != ELFCLASS64 {
        return Err(ElfError::NotElf64);
    }
    if file[EI_DATA] != ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian);
    }
    // (offset, count, entry size) of the program and section header tables (ELF64 header).
    let read = |at: usize, len: usize| {
        file[at..at + len]
            .iter()
            .rev()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte))
    };
    for (offset, count, entry_size) in [
        (read(32, 8), read(56, 2), read(54, 2)),
        (read(40, 8), read(60, 2), read(58, 2)),
    ] {
        let end = offset.checked_add(count * entry_size);
        if count != 0 && end.is_none_or(|end| end > file.len() as u64) {
            return Err(ElfError::HeaderTablePastEnd);
        }
    }
    Ok(())
}

fn check_segment(index: usize, s: &Segment, align: u64, file_len: usize) -> Result<(), ElfError> {
    let file_end = s
        .offset
        .checked_add(s.filesz)
        .ok_or(ElfError::SegmentPastEnd { index })?;
    if file_end > file_len as u64 {
        return Err(ElfError::SegmentPastEnd { index });
    }
    if s.filesz > s.memsz {
        return Err(ElfError::FileSizeExceedsMemSize { index });
    }
    // ELF gABI: p_align is 0/1 or a power of two, and p_vaddr = p_offset modulo p_align. The
    // loader also needs p_paddr congruent to p_offset within a page.
    let align_ok = align <= 1 || (align.is_power_of_two() && s.vaddr % align == s.offset % align);
    if !align_ok || s.paddr % PAGE_SIZE != s.vaddr % PAGE_SIZE {
        return Err(ElfError::BadAlignment { index });
    }
    let fits = |start: u64| {
        start
            .checked_add(s.memsz)
            .is_some_and(|end| end <= PHYS_ADDR_LIMIT)
    };
    if !fits(s.paddr) || s.vaddr.checked_add(s.memsz).is_none() {
        return Err(ElfError::AddressWraps { index });
    }
    Ok(())
}

/// The program-header index of a segment (for messages), found again by its addresses.
fn segment_index(table: &elf::segment::SegmentTable<'_, LittleEndian>, wanted: &Segment) -> usize {
    table
        .iter()
        .position(|h| h.p_type == PT_LOAD && h.p_paddr == wanted.paddr && h.p_memsz == wanted.memsz)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
