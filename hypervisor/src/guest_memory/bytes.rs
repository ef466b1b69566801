//! Reading, comparing and writing guest RAM: the one place the hypervisor dereferences a
//! guest-physical address at run time. A [`GuestBytes`] names a range of guest RAM that a check
//! vouched for; its methods are the only accesses. Safe code gets one from [`GuestBytes::checked`]
//! (guest RAM outside the hypervisor, write-back in EPT); an exit handler that checked under the
//! EPT lock it holds, with the guest's own rights, states so with [`GuestBytes::vouched`].
#![allow(unsafe_code)]

use core::sync::atomic::AtomicU64;

use super::GuestPhysical;
use crate::guest_paging::walker::WalkError;

const PAGE: u64 = 4096;
/// Bytes compared at a time (copied to the stack first).
const CHUNK: usize = 256;

/// A guest-physical address (equal to the host-physical one: the EPT is an identity map, and
/// the host identity-maps all of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gpa(pub u64);

impl Gpa {
    pub fn offset(self, bytes: u64) -> Gpa {
        Gpa(self.0.wrapping_add(bytes))
    }
}

/// `len` bytes of guest RAM from `start` that a check found the hypervisor may touch: RAM
/// mapped by EPT (identity, write-back), outside the hypervisor's ranges. Another vCPU may
/// change the bytes meanwhile unless the caller's check also froze them; the accesses below
/// copy plain bytes, so a concurrent change gives old or new bytes, never unsoundness in the
/// hypervisor's own state.
#[derive(Debug)]
pub struct GuestBytes {
    start: Gpa,
    len: usize,
}

impl GuestBytes {
    /// Checks every page of `[start, start + len)` with [`GuestPhysical`] (`wait_for_lock`:
    /// wait for the EPT lock rather than refuse while another vCPU holds it; never while the
    /// caller holds it).
    pub fn checked(start: Gpa, len: usize, wait_for_lock: bool) -> Result<GuestBytes, WalkError> {
        let end = start
            .0
            .checked_add(len as u64)
            .ok_or(WalkError::NotInEpt(start.0))?;
        let mut at = start.0;
        while at < end {
            let piece = (end - at).min(PAGE - at % PAGE);
            match wait_for_lock {
                true => GuestPhysical.check_waiting(at, piece)?,
                false => GuestPhysical.check(at, piece)?,
            }
            at += piece;
        }
        Ok(GuestBytes { start, len })
    }

    /// A range the caller checked itself.
    ///
    /// # Safety
    /// Every byte of `[start, start + len)` must be guest RAM outside the hypervisor's ranges
    /// (so identity-mapped by the host and never the hypervisor's own memory), and stay so for
    /// as long as the value is used (the caller holds the EPT lock, or the range is measured,
    /// read-only memory).
    pub unsafe fn vouched(start: Gpa, len: usize) -> GuestBytes {
        GuestBytes { start, len }
    }

    #[cfg(any(test, feature = "gdb"))]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies the bytes into `into` (as many as both hold).
    pub fn read(&self, into: &mut [u8]) {
        let count = into.len().min(self.len);
        // SAFETY: the constructor vouched for `len` bytes of guest RAM, identity-mapped by the
        // host; `into` is the hypervisor's own buffer, never guest RAM (disjoint).
        unsafe {
            core::ptr::copy_nonoverlapping(self.start.0 as *const u8, into.as_mut_ptr(), count)
        }
    }

    /// Copies `data` into the bytes (as many as both hold).
    pub fn write(&self, data: &[u8]) {
        let count = data.len().min(self.len);
        // SAFETY: as in `read`; the bytes are guest RAM, never the hypervisor's own memory, so
        // the write cannot change the hypervisor's state.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.start.0 as *mut u8, count) }
    }

    /// Writes `value` at byte `offset` (unaligned), if it fits.
    pub fn write_at<T: Copy>(&self, offset: usize, value: T) -> bool {
        let fits = offset
            .checked_add(core::mem::size_of::<T>())
            .is_some_and(|end| end <= self.len);
        if fits {
            // SAFETY: as in `write`; `[offset, offset + size_of::<T>())` lies inside the range.
            unsafe { core::ptr::write_unaligned((self.start.0 + offset as u64) as *mut T, value) };
        }
        fits
    }

    /// True if the bytes equal `other`'s (compared in chunks copied out, so a concurrent
    /// change is compared as whichever bytes the copy saw).
    pub fn equals(&self, other: &GuestBytes) -> bool {
        self.len == other.len
            && self
                .chunks()
                .zip(other.chunks())
                .all(|(a, b)| a.copy() == b.copy())
    }

    /// True if every byte is zero.
    pub fn is_zero(&self) -> bool {
        self.chunks().all(|chunk| chunk.copy() == [0; CHUNK])
    }

    /// A chunk's bytes copied out, zero past its length.
    fn copy(&self) -> [u8; CHUNK] {
        let mut bytes = [0; CHUNK];
        self.read(&mut bytes);
        bytes
    }

    /// The range in pieces of at most [`CHUNK`] bytes.
    fn chunks(&self) -> impl Iterator<Item = GuestBytes> + '_ {
        (0..self.len).step_by(CHUNK).map(|at| GuestBytes {
            start: self.start.offset(at as u64),
            len: (self.len - at).min(CHUNK),
        })
    }

    /// The 8 bytes as an atomic entry (a guest paging-structure entry the guest may change
    /// meanwhile); `None` unless the range is exactly 8 aligned bytes.
    pub fn as_atomic_u64(&self) -> Option<&'static AtomicU64> {
        if self.len != 8 || !self.start.0.is_multiple_of(8) {
            return None;
        }
        // SAFETY: 8 aligned bytes of guest RAM the host identity-maps for good (never freed or
        // remapped); the guest may change them concurrently, which atomic accesses race with
        // safely.
        Some(unsafe { &*(self.start.0 as *const AtomicU64) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host buffer standing in for guest RAM (the host's addresses are its own identity map).
    fn guest(bytes: &mut [u8]) -> GuestBytes {
        // SAFETY: the test's own buffer, alive for the test.
        unsafe { GuestBytes::vouched(Gpa(bytes.as_mut_ptr() as u64), bytes.len()) }
    }

    #[test]
    fn reads_writes_and_compares_within_the_range() {
        let mut ram = [0u8; 600];
        let bytes = guest(&mut ram[..520]);
        assert!(bytes.is_zero() && bytes.len() == 520);
        bytes.write(&[7u8; 1000]);
        let mut copy = [0u8; 600];
        bytes.read(&mut copy);
        assert!(copy[..520].iter().all(|&b| b == 7) && copy[520..].iter().all(|&b| b == 0));
        assert!(
            ram[520..].iter().all(|&b| b == 0),
            "nothing written past the range"
        );
        let mut other = [7u8; 520];
        assert!(guest(&mut ram[..520]).equals(&guest(&mut other)));
        other[519] = 8;
        assert!(!guest(&mut ram[..520]).equals(&guest(&mut other)));
        assert!(!guest(&mut ram[..520]).equals(&guest(&mut other[..519])));
    }

    #[test]
    fn records_and_entries_stay_inside() {
        let mut ram = [0u64; 4];
        let bytes = guest(bytemuck_bytes(&mut ram));
        assert!(bytes.write_at(8, 0x1122_3344_5566_7788u64));
        assert!(!bytes.write_at(25, 0u64), "would end past the range");
        assert_eq!(ram[1], 0x1122_3344_5566_7788);
        let entry = guest(&mut bytemuck_bytes(&mut ram)[8..16]);
        let atomic = entry.as_atomic_u64().unwrap();
        assert_eq!(
            atomic.load(core::sync::atomic::Ordering::SeqCst),
            0x1122_3344_5566_7788
        );
        assert!(guest(&mut bytemuck_bytes(&mut ram)[4..12])
            .as_atomic_u64()
            .is_none());
        assert!(guest(&mut bytemuck_bytes(&mut ram)[8..24])
            .as_atomic_u64()
            .is_none());
    }

    fn bytemuck_bytes(words: &mut [u64]) -> &mut [u8] {
        // SAFETY: u64s viewed as their bytes (no padding, alignment only drops).
        unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
    }
}
