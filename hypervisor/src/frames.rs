//! Hands out 4 KiB frames from the range the firmware reserved for the hypervisor.
//!
//! A bump allocator: the hypervisor allocates everything once at start (stacks, VMX regions,
//! bitmaps, page tables) and never frees, so nothing more is needed.
#![forbid(unsafe_code)]

use crate::handoff::PhysRange;

pub const FRAME_SIZE: u64 = 4096;

/// The frames of the reserved range not yet handed out.
#[derive(Debug)]
pub struct FrameAllocator {
    next: u64,
    end: u64,
}

impl FrameAllocator {
    /// Takes the whole of `range` (its start rounded up, its end down, to 4 KiB).
    pub const fn new(range: PhysRange) -> Self {
        let next = (range.start + FRAME_SIZE - 1) & !(FRAME_SIZE - 1);
        let end = range.end() & !(FRAME_SIZE - 1);
        Self { next, end }
    }

    /// `count` contiguous frames; the physical address of the first, or `None` if exhausted.
    /// The caller zeroes them if it needs zeroes.
    pub fn allocate(&mut self, count: u64) -> Option<u64> {
        let bytes = count.checked_mul(FRAME_SIZE)?;
        let start = self.next;
        let end = start.checked_add(bytes).filter(|&end| end <= self.end)?;
        self.next = end;
        Some(start)
    }

    /// Bytes still free.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_aligned_disjoint_and_bounded() {
        let mut frames = FrameAllocator::new(PhysRange::new(0x10_0800, 4 * FRAME_SIZE));
        assert_eq!(frames.allocate(1), Some(0x10_1000));
        assert_eq!(frames.allocate(2), Some(0x10_2000));
        assert_eq!(
            frames.allocate(1),
            None,
            "the last partial frame is not handed out"
        );
        assert_eq!(frames.remaining(), 0);
    }

    #[test]
    fn huge_requests_fail_without_overflow() {
        let mut frames = FrameAllocator::new(PhysRange::new(0x1000, FRAME_SIZE));
        assert_eq!(frames.allocate(u64::MAX), None);
        assert_eq!(frames.allocate(1), Some(0x1000));
    }
}
