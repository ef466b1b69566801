//! The initrd: a flat archive of named files, each page-aligned so program segments can be
//! mapped (and later hashed by the hypervisor) in place.
//!
//! Layout (little-endian): a 16-byte [`MAGIC`], `count: u32`, `reserved: u32`, then `count`
//! entries of [`ENTRY_SIZE`] bytes: `name: [u8; 32]` (NUL padded), `offset: u64`,
//! `size: u64`, `sha256: [u8; 32]`; file data at the given offsets from the archive start.

pub const MAGIC: [u8; 16] = *b"RAMPART-INITRD\0\0";
pub const HEADER_SIZE: usize = 24;
pub const ENTRY_SIZE: usize = 80;
pub const NAME_LEN: usize = 32;
pub const ALIGN: usize = 4096;
/// At most this many files.
pub const MAX_FILES: usize = 64;

/// Why an archive is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitrdError {
    BadMagic,
    Truncated,
    TooManyFiles,
    /// Entry `index` points outside the archive or has a bad name.
    BadEntry {
        index: usize,
    },
}

impl core::fmt::Display for InitrdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic => f.write_str("initrd: bad magic"),
            Self::Truncated => f.write_str("initrd: truncated"),
            Self::TooManyFiles => f.write_str("initrd: too many files"),
            Self::BadEntry { index } => write!(f, "initrd: entry {index} is malformed"),
        }
    }
}

/// One file of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    /// Offset of `data` from the archive start (a multiple of [`ALIGN`]).
    pub offset: usize,
    pub sha256: [u8; 32],
}

/// A validated archive.
#[derive(Clone, Copy, Debug)]
pub struct Initrd<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Initrd<'a> {
    /// Validates the header and every entry; never panics on any input.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, InitrdError> {
        if bytes.len() < HEADER_SIZE {
            return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(16)]) {
                InitrdError::Truncated
            } else {
                InitrdError::BadMagic
            });
        }
        if bytes[..16] != MAGIC {
            return Err(InitrdError::BadMagic);
        }
        let count = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
        if count > MAX_FILES {
            return Err(InitrdError::TooManyFiles);
        }
        if bytes.len() < HEADER_SIZE + count * ENTRY_SIZE {
            return Err(InitrdError::Truncated);
        }
        let archive = Self { bytes, count };
        for index in 0..count {
            archive
                .entry(index)
                .ok_or(InitrdError::BadEntry { index })?;
        }
        Ok(archive)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn files(&self) -> impl Iterator<Item = File<'a>> + '_ {
        (0..self.count).filter_map(|i| self.entry(i))
    }

    pub fn find(&self, name: &str) -> Option<File<'a>> {
        self.files().find(|f| f.name == name)
    }

    fn entry(&self, index: usize) -> Option<File<'a>> {
        let at = HEADER_SIZE + index * ENTRY_SIZE;
        let raw = self.bytes.get(at..at + ENTRY_SIZE)?;
        let name_len = raw[..NAME_LEN]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(NAME_LEN);
        let name = core::str::from_utf8(&raw[..name_len])
            .ok()
            .filter(|n| !n.is_empty())?;
        let word = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
        let offset = usize::try_from(word(NAME_LEN)).ok()?;
        let size = usize::try_from(word(NAME_LEN + 8)).ok()?;
        if offset % ALIGN != 0 {
            return None;
        }
        let data = self.bytes.get(offset..offset.checked_add(size)?)?;
        let mut sha256 = [0; 32];
        sha256.copy_from_slice(&raw[NAME_LEN + 16..NAME_LEN + 48]);
        Some(File {
            name,
            data,
            offset,
            sha256,
        })
    }
}

/// Builds an archive (host side: the runner). `files` are (name, data, sha256).
#[cfg(any(test, feature = "std"))]
pub fn build(files: &[(&str, &[u8], [u8; 32])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = (HEADER_SIZE + files.len() * ENTRY_SIZE).div_ceil(ALIGN) * ALIGN;
    let mut offsets = Vec::new();
    for (name, data, sha) in files {
        let mut raw_name = [0u8; NAME_LEN];
        raw_name[..name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&raw_name);
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(sha);
        offsets.push(offset);
        offset = (offset + data.len()).div_ceil(ALIGN) * ALIGN;
    }
    for ((_, data, _), at) in files.iter().zip(offsets) {
        out.resize(at, 0);
        out.extend_from_slice(data);
    }
    out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = build(&[
            ("init", b"\x7fELF-init", [1; 32]),
            ("sh", b"shell", [2; 32]),
        ]);
        let archive = Initrd::parse(&bytes).unwrap();
        assert_eq!(archive.len(), 2);
        let sh = archive.find("sh").unwrap();
        assert_eq!(
            (sh.data, sh.sha256, sh.offset % ALIGN),
            (&b"shell"[..], [2; 32], 0)
        );
        assert!(archive.find("nope").is_none());
    }

    #[test]
    fn malformed_archives_are_errors_not_panics() {
        assert_eq!(Initrd::parse(b"").unwrap_err(), InitrdError::Truncated);
        assert_eq!(
            Initrd::parse(&[0u8; 64]).unwrap_err(),
            InitrdError::BadMagic
        );
        let good = build(&[("a", b"xyz", [0; 32])]);
        assert_eq!(
            Initrd::parse(&good[..30]).unwrap_err(),
            InitrdError::Truncated
        );
        let mut bad_offset = good.clone();
        bad_offset[HEADER_SIZE + NAME_LEN] = 1; // offset no longer aligned
        assert_eq!(
            Initrd::parse(&bad_offset).unwrap_err(),
            InitrdError::BadEntry { index: 0 }
        );
        let mut huge = good.clone();
        huge[HEADER_SIZE + NAME_LEN + 8..HEADER_SIZE + NAME_LEN + 16].fill(0xff);
        assert!(Initrd::parse(&huge).is_err());
        for cut in 0..good.len().min(200) {
            let _ = Initrd::parse(&good[..cut]);
        }
    }
}
