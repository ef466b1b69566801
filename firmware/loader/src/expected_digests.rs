//! Verified boot: the SHA-256 digests the firmware expects of the kernel and the initrd, built
//! into BOOTX64.EFI so that a Secure Boot signature over the EFI binary covers what it loads.
//! The firmware carries an [`ExpectedDigests`] block starting with [`MARKER`]; the runner
//! stamps the digests into the built binary (`stamp`) before signing or imaging, and the
//! firmware refuses a kernel or initrd whose digest differs, and refuses to boot unstamped.

/// First bytes of the block, unique in the binary.
pub const MARKER: [u8; 32] = *b"RAMPART-EXPECTED-SHA256-STAMP-V1";
/// `flags` bit 0: stamped; bit 1: an initrd is expected.
pub const STAMPED: u64 = 1 << 0;
pub const HAS_INITRD: u64 = 1 << 1;

/// The block as it lies in the binary (`repr(C)`, little-endian).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedDigests {
    pub marker: [u8; 32],
    pub flags: u64,
    pub kernel: [u8; 32],
    pub initrd: [u8; 32],
}

const FLAGS_AT: usize = 32;
const KERNEL_AT: usize = 40;
const INITRD_AT: usize = 72;
const _: () = assert!(core::mem::size_of::<ExpectedDigests>() == 104);

impl ExpectedDigests {
    /// The unstamped block the firmware is built with.
    pub const UNSTAMPED: Self = Self {
        marker: MARKER,
        flags: 0,
        kernel: [0; 32],
        initrd: [0; 32],
    };
}

/// Why a binary cannot be stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampError {
    /// No block: not a Rampart firmware.
    NoMarker,
    /// More than one block: ambiguous.
    SeveralMarkers,
}

impl core::fmt::Display for StampError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoMarker => "no expected-digest block in the firmware binary",
            Self::SeveralMarkers => "more than one expected-digest block in the firmware binary",
        })
    }
}

/// Writes the digests into the block of the EFI binary `efi` (in place).
pub fn stamp(efi: &mut [u8], kernel: [u8; 32], initrd: Option<[u8; 32]>) -> Result<(), StampError> {
    let mut found = efi
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER);
    let (at, _) = found.next().ok_or(StampError::NoMarker)?;
    if found.next().is_some() {
        return Err(StampError::SeveralMarkers);
    }
    let block = efi
        .get_mut(at..at + core::mem::size_of::<ExpectedDigests>())
        .ok_or(StampError::NoMarker)?;
    let flags = STAMPED | if initrd.is_some() { HAS_INITRD } else { 0 };
    block[FLAGS_AT..KERNEL_AT].copy_from_slice(&flags.to_le_bytes());
    block[KERNEL_AT..INITRD_AT].copy_from_slice(&kernel);
    block[INITRD_AT..].copy_from_slice(&initrd.unwrap_or([0; 32]));
    Ok(())
}

/// What the firmware concludes about a file it measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    /// The binary was never stamped: no boot.
    Unstamped,
    /// The digest differs from the stamped one.
    Mismatch {
        expected: [u8; 32],
    },
    /// The initrd is present but none was expected, or expected but absent.
    Unexpected,
}

impl ExpectedDigests {
    pub fn check_kernel(&self, measured: &[u8; 32]) -> Verdict {
        if self.flags & STAMPED == 0 {
            Verdict::Unstamped
        } else if &self.kernel == measured {
            Verdict::Verified
        } else {
            Verdict::Mismatch {
                expected: self.kernel,
            }
        }
    }

    pub fn check_initrd(&self, measured: Option<&[u8; 32]>) -> Verdict {
        match (
            self.flags & STAMPED != 0,
            self.flags & HAS_INITRD != 0,
            measured,
        ) {
            (false, _, _) => Verdict::Unstamped,
            (true, false, None) => Verdict::Verified,
            (true, true, Some(m)) if *m == self.initrd => Verdict::Verified,
            (true, true, Some(_)) => Verdict::Mismatch {
                expected: self.initrd,
            },
            _ => Verdict::Unexpected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary() -> Vec<u8> {
        let mut efi = vec![0x90u8; 300];
        efi[100..132].copy_from_slice(&MARKER);
        efi
    }

    fn block(efi: &[u8]) -> ExpectedDigests {
        let b = &efi[100..204];
        ExpectedDigests {
            marker: b[..32].try_into().unwrap(),
            flags: u64::from_le_bytes(b[32..40].try_into().unwrap()),
            kernel: b[40..72].try_into().unwrap(),
            initrd: b[72..104].try_into().unwrap(),
        }
    }

    #[test]
    fn stamping_writes_the_block_and_the_checks_follow_it() {
        let mut efi = binary();
        stamp(&mut efi, [1; 32], Some([2; 32])).unwrap();
        let digests = block(&efi);
        assert_eq!(digests.check_kernel(&[1; 32]), Verdict::Verified);
        assert_eq!(
            digests.check_kernel(&[3; 32]),
            Verdict::Mismatch { expected: [1; 32] }
        );
        assert_eq!(digests.check_initrd(Some(&[2; 32])), Verdict::Verified);
        assert_eq!(digests.check_initrd(None), Verdict::Unexpected);
        assert_eq!(efi[99], 0x90);
        assert_eq!(efi[204], 0x90, "nothing written past the block");
    }

    #[test]
    fn unstamped_and_bad_binaries() {
        assert_eq!(
            ExpectedDigests::UNSTAMPED.check_kernel(&[0; 32]),
            Verdict::Unstamped
        );
        assert_eq!(
            stamp(&mut [0u8; 64], [0; 32], None),
            Err(StampError::NoMarker)
        );
        let mut twice = binary();
        twice[200..232].copy_from_slice(&MARKER);
        assert_eq!(
            stamp(&mut twice, [0; 32], None),
            Err(StampError::SeveralMarkers)
        );
        let mut efi = binary();
        stamp(&mut efi, [1; 32], None).unwrap();
        assert_eq!(block(&efi).check_initrd(None), Verdict::Verified);
        assert_eq!(
            block(&efi).check_initrd(Some(&[0; 32])),
            Verdict::Unexpected
        );
    }
}
