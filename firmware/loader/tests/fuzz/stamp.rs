//! The verified-boot stamp (`expected_digests::stamp`): stamping any binary never panics,
//! writes nothing outside the one block, and a stamped block verifies exactly the digests
//! stamped into it (the firmware's checks read the block as `repr(C)` little-endian).

use proptest::prelude::*;
use rampart_loader::expected_digests::{stamp, ExpectedDigests, StampError, Verdict, MARKER};

const BLOCK: usize = core::mem::size_of::<ExpectedDigests>();

/// The block at `at`, decoded like the firmware's static (`repr(C)`, little-endian).
fn block_at(efi: &[u8], at: usize) -> ExpectedDigests {
    let b = &efi[at..at + BLOCK];
    ExpectedDigests {
        marker: b[..32].try_into().unwrap(),
        flags: u64::from_le_bytes(b[32..40].try_into().unwrap()),
        kernel: b[40..72].try_into().unwrap(),
        initrd: b[72..104].try_into().unwrap(),
    }
}

fn marker_positions(efi: &[u8]) -> Vec<usize> {
    efi.windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(at, _)| at)
        .collect()
}

/// A random binary with markers (whole or cut short) dropped in at random places.
fn binary() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec((any::<prop::sample::Index>(), 1usize..=32), 0..3),
    )
        .prop_map(|(mut efi, markers)| {
            for (index, len) in markers {
                if efi.is_empty() {
                    efi.extend_from_slice(&MARKER[..len]);
                    continue;
                }
                let at = index.index(efi.len());
                let end = (at + len).min(efi.len());
                efi[at..end].copy_from_slice(&MARKER[..end - at]);
            }
            efi
        })
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn stamping_random_binaries(
        efi in binary(),
        kernel in any::<[u8; 32]>(),
        initrd in any::<Option<[u8; 32]>>(),
        other in any::<[u8; 32]>(),
    ) {
        let before = efi.clone();
        let markers = marker_positions(&efi);
        let mut stamped = efi;
        match stamp(&mut stamped, kernel, initrd) {
            Ok(()) => {
                prop_assert_eq!(markers.len(), 1);
                let at = markers[0];
                prop_assert!(at + BLOCK <= stamped.len());
                prop_assert_eq!(&stamped[..at], &before[..at]);
                prop_assert_eq!(&stamped[at + BLOCK..], &before[at + BLOCK..]);
                let block = block_at(&stamped, at);
                prop_assert_eq!(block.marker, MARKER);
                prop_assert_eq!(block.check_kernel(&kernel), Verdict::Verified);
                prop_assert_eq!(block.check_initrd(initrd.as_ref()), Verdict::Verified);
                if other != kernel {
                    prop_assert_eq!(block.check_kernel(&other), Verdict::Mismatch { expected: kernel });
                }
                let wrong_initrd = match initrd {
                    Some(digest) if digest != other => Some(other),
                    Some(_) => None,
                    None => Some(other),
                };
                prop_assert_ne!(block.check_initrd(wrong_initrd.as_ref()), Verdict::Verified);
            }
            Err(error) => {
                prop_assert_eq!(&stamped, &before, "a refused stamp changed the binary");
                match error {
                    StampError::SeveralMarkers => prop_assert!(markers.len() > 1),
                    // No marker, or the only one too close to the end for a whole block.
                    StampError::NoMarker => prop_assert!(
                        markers.is_empty() || markers.iter().all(|&at| at + BLOCK > before.len())
                    ),
                }
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    /// The firmware as built (one unstamped block somewhere in its image) always stamps.
    #[test]
    fn unstamped_firmware_always_stamps(
        head in proptest::collection::vec(any::<u8>(), 0..256),
        tail in proptest::collection::vec(any::<u8>(), 0..256),
        kernel in any::<[u8; 32]>(),
        initrd in any::<Option<[u8; 32]>>(),
    ) {
        let mut efi = head.clone();
        let unstamped = ExpectedDigests::UNSTAMPED;
        efi.extend_from_slice(&unstamped.marker);
        efi.extend_from_slice(&unstamped.flags.to_le_bytes());
        efi.extend_from_slice(&unstamped.kernel);
        efi.extend_from_slice(&unstamped.initrd);
        efi.extend_from_slice(&tail);
        // Random bytes that happen to contain the marker are another test's business.
        prop_assume!(marker_positions(&efi).len() == 1);
        prop_assert_eq!(block_at(&efi, head.len()).check_kernel(&kernel), Verdict::Unstamped);
        stamp(&mut efi, kernel, initrd).unwrap();
        let block = block_at(&efi, head.len());
        prop_assert_eq!(block.check_kernel(&kernel), Verdict::Verified);
        prop_assert_eq!(block.check_initrd(initrd.as_ref()), Verdict::Verified);
    }
}
