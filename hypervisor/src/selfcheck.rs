//! The hypervisor checks itself: at launch it hashes its own code and read-only data (the
//! non-writable sections of its PE image, after the UEFI loader's relocations), and on request
//! (`LogExitStats`, printed before the guest's result line) compares again. A change means
//! something wrote the hypervisor's code behind EPT (DMA, SMM, a stray AP): the line says so.
#![allow(unsafe_code)]

use crate::handoff::PhysRange;
use sha2::{Digest, Sha256};

/// Most sections hashed.
const MAX_SECTIONS: usize = 16;

/// The read-only sections (image offset, length) of a PE image.
pub type ReadOnlySections = heapless::Vec<(u64, u64), MAX_SECTIONS>;

/// PE/COFF layout (Microsoft PE format specification): e_lfanew at 0x3C; after the "PE\0\0"
/// signature the COFF header (NumberOfSections at +2, SizeOfOptionalHeader at +16, 20 bytes),
/// then the optional header, then 40-byte section headers (VirtualSize +8, VirtualAddress
/// +12, Characteristics +36; IMAGE_SCN_MEM_WRITE = 0x80000000).
pub fn read_only_sections(image: &[u8]) -> Option<ReadOnlySections> {
    const MEM_WRITE: u32 = 0x8000_0000;
    let u16_at = |at: usize| Some(u16::from_le_bytes(image.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?));
    let pe = u32_at(0x3c)? as usize;
    if image.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let coff = pe + 4;
    let sections = usize::from(u16_at(coff + 2)?);
    let table = coff + 20 + usize::from(u16_at(coff + 16)?);
    let mut out = ReadOnlySections::default();
    for index in 0..sections.min(MAX_SECTIONS) {
        let header = table + index * 40;
        let size = u32_at(header + 8)?;
        let address = u32_at(header + 12)?;
        if u32_at(header + 36)? & MEM_WRITE == 0 && size > 0 {
            out.push((u64::from(address), u64::from(size))).ok()?;
        }
    }
    Some(out)
}

/// What launch recorded.
struct Baseline {
    image: PhysRange,
    sections: ReadOnlySections,
    digest: [u8; 32],
}

static BASELINE: spin::Once<Baseline> = spin::Once::new();

fn digest(image: PhysRange, sections: &ReadOnlySections) -> ([u8; 32], u64) {
    let mut hasher = Sha256::new();
    let mut bytes = 0;
    for &(offset, length) in sections {
        let length = length.min(image.length.saturating_sub(offset));
        // SAFETY: the range lies inside the hypervisor's own loaded image (clamped to it),
        // identity-mapped and never unmapped; read-only sections are not written while hashed.
        let bytes_of = unsafe {
            core::slice::from_raw_parts((image.start + offset) as *const u8, length as usize)
        };
        hasher.update(bytes_of);
        bytes += length;
    }
    (hasher.finalize().into(), bytes)
}

/// Hashes the image's read-only sections; `false` if the PE headers cannot be read.
///
/// # Safety
/// `image` must be the hypervisor's own loaded EFI image, identity-mapped.
pub unsafe fn record(image: PhysRange) -> bool {
    // SAFETY: the image's first page holds its PE headers (caller contract).
    let headers = unsafe { core::slice::from_raw_parts(image.start as *const u8, 4096) };
    let Some(sections) = read_only_sections(headers) else {
        return false;
    };
    let (digest, _) = digest(image, &sections);
    BASELINE.call_once(|| Baseline {
        image,
        sections,
        digest,
    });
    true
}

/// The check's log line.
pub struct Report;

impl core::fmt::Display for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Some(baseline) = BASELINE.get() else {
            return f.write_str("self-check: no baseline (PE headers unreadable at launch)");
        };
        let (now, bytes) = digest(baseline.image, &baseline.sections);
        let state = if now == baseline.digest {
            "unchanged since launch"
        } else {
            "CHANGED since launch"
        };
        write!(
            f,
            "self-check: hypervisor code and read-only data {state} ({} bytes in {} sections, sha256 ",
            bytes, baseline.sections.len()
        )?;
        now.iter().take(8).try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("...)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_non_writable_sections() {
        let mut image = vec![0u8; 1024];
        image[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        image[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        image[coff + 2..coff + 4].copy_from_slice(&2u16.to_le_bytes());
        image[coff + 16..coff + 18].copy_from_slice(&0xf0u16.to_le_bytes());
        let table = coff + 20 + 0xf0;
        let section = |image: &mut Vec<u8>, i: usize, address: u32, size: u32, flags: u32| {
            let h = table + i * 40;
            image[h + 8..h + 12].copy_from_slice(&size.to_le_bytes());
            image[h + 12..h + 16].copy_from_slice(&address.to_le_bytes());
            image[h + 36..h + 40].copy_from_slice(&flags.to_le_bytes());
        };
        section(&mut image, 0, 0x1000, 0x500, 0x6000_0020); // .text: code, execute, read
        section(&mut image, 1, 0x2000, 0x100, 0xc000_0040); // .data: read, write
        let found = read_only_sections(&image).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0], (0x1000, 0x500));
        assert!(read_only_sections(&image[..0x40]).is_none());
        assert!(read_only_sections(&[0u8; 64]).is_none());
    }
}
