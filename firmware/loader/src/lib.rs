//! Pure logic of the firmware stage (host-tested): everything that needs no UEFI call.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod boot_area;
pub mod boot_area_kernel;
pub mod boot_info_encode;
pub mod config;
pub mod cpus;
pub mod elf;
pub mod expected_digests;
pub mod memory_map;

/// Size of a 4 KiB page, the unit of every UEFI allocation.
pub const PAGE_SIZE: u64 = 4096;

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(sum) => Some(sum & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}
