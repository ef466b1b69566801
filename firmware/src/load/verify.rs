//! Verified boot: the kernel and initrd digests built into this binary (see
//! `rampart_loader::expected_digests`), compared with what was measured before anything of
//! the file is parsed or run.
#![allow(unsafe_code)]

use rampart_loader::expected_digests::{ExpectedDigests, Verdict};

use crate::fail::{BootError, Problem};

/// The block the runner stamps after the build. `#[used]` and the volatile read keep the
/// compiler from folding the unstamped constant into the checks.
#[used]
static EXPECTED: ExpectedDigests = ExpectedDigests::UNSTAMPED;

/// The digests as stamped into the loaded image.
pub fn expected() -> ExpectedDigests {
    // SAFETY: a valid, aligned static of plain integers; the volatile read makes the compiler
    // read the loaded image's bytes (stamped after the build) instead of the initializer.
    unsafe { core::ptr::read_volatile(&raw const EXPECTED) }
}

/// Turns a verdict on `file` measured as `actual` into a boot error.
pub fn require(
    file: &'static str,
    verdict: Verdict,
    actual: Option<[u8; 32]>,
) -> Result<(), BootError> {
    let problem = match verdict {
        Verdict::Verified => return Ok(()),
        Verdict::Unstamped => Problem::Unstamped,
        Verdict::Mismatch { expected } => Problem::DigestMismatch {
            expected,
            actual: actual.unwrap_or([0; 32]),
        },
        Verdict::Unexpected => Problem::UnexpectedFile,
    };
    Err(BootError::new(file, problem))
}
