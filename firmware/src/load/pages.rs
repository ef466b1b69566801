//! Page allocations owned by the firmware, and the only place that turns one into a slice.
#![allow(unsafe_code)]

use rampart_loader::PAGE_SIZE;
use uefi::boot::{self, AllocateType, MemoryType};

use crate::fail::{BootError, Problem};

/// Highest address for allocations the guest reads early (boot area, initrd): below 4 GiB.
pub const BELOW_4G: u64 = 0xFFFF_FFFF;

/// Pages obtained from AllocatePages, owned by whoever holds this value.
#[derive(Debug)]
pub struct Pages {
    pub start: u64,
    pub count: u64,
}

impl Pages {
    /// Allocates `count` pages of `memory_type` per `placement` and zeroes them.
    pub fn allocate(
        placement: AllocateType,
        memory_type: u32,
        count: u64,
        file: &'static str,
    ) -> Result<Self, BootError> {
        let address = match placement {
            AllocateType::Address(address) => address,
            _ => 0,
        };
        let problem = |status| Problem::Allocate {
            address,
            pages: count,
            status,
        };
        let pages = usize::try_from(count)
            .map_err(|_| BootError::new(file, problem(uefi::Status::OUT_OF_RESOURCES)))?;
        let pointer = boot::allocate_pages(placement, MemoryType::custom(memory_type), pages)
            .map_err(|e| BootError::new(file, problem(e.status())))?;
        let mut allocated = Self {
            start: pointer.as_ptr() as u64,
            count,
        };
        allocated.bytes_mut().fill(0);
        Ok(allocated)
    }

    pub const fn end(&self) -> u64 {
        self.start + self.count * PAGE_SIZE
    }

    /// The pages as bytes (UEFI identity-maps all memory, so the physical address is usable as a
    /// pointer, and it stays so under the boot identity map after ExitBootServices).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = (self.count * PAGE_SIZE) as usize;
        // SAFETY: `start..start + len` was returned by AllocatePages for this value alone (the
        // only constructors are `allocate` and `split`, which never hand out a page twice), it is
        // identity-mapped RAM, and `&mut self` makes this the only live reference to it.
        unsafe { core::slice::from_raw_parts_mut(self.start as *mut u8, len) }
    }

    /// Returns `count` pages at `start` (inside this allocation) to the firmware, keeping the
    /// rest; used to trim alignment slack.
    pub fn free_range(&self, start: u64, count: u64) -> Result<(), uefi::Status> {
        if count == 0 {
            return Ok(());
        }
        assert!(
            start >= self.start && start + count * PAGE_SIZE <= self.end(),
            "free outside allocation"
        );
        let pointer =
            core::ptr::NonNull::new(start as *mut u8).ok_or(uefi::Status::INVALID_PARAMETER)?;
        // SAFETY: the range lies inside pages this value got from AllocatePages (asserted above);
        // the caller stops using it and no slice into it is alive (`bytes_mut` borrows `self`
        // mutably, and this takes `&self`).
        unsafe { boot::free_pages(pointer, count as usize) }.map_err(|e| e.status())
    }
}
