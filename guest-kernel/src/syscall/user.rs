//! Checked access to the current process's memory.

use crate::arch::phys::Frames;
use crate::arch::user_copy;
use crate::mm::address_space;
use crate::mm::user_range::{self, Direction};
use rampart_kernel_abi::syscall::Errno;

/// Checks a user range against the current address space (mapping untouched heap pages of
/// it first: they are valid memory the process has not used yet).
pub fn check(address: u64, length: u64, direction: Direction) -> Result<(), Errno> {
    super::memory::populate(address, length);
    let root = crate::process::current_root();
    user_range::check(address, length, direction, |page| {
        address_space::leaf(&Frames, root, page)
    })
}

/// Copies `buffer.len()` bytes from user `address`.
pub fn read(address: u64, buffer: &mut [u8]) -> Result<(), Errno> {
    check(address, buffer.len() as u64, Direction::Read)?;
    // SAFETY: just checked: mapped user-readable in the loaded address space (the current
    // process's, which is loaded while it runs a system call).
    #[allow(unsafe_code)]
    unsafe {
        user_copy::copy_from_user(buffer, address)
    };
    Ok(())
}

/// Copies `data` to user `address`.
pub fn write(address: u64, data: &[u8]) -> Result<(), Errno> {
    check(address, data.len() as u64, Direction::Write)?;
    // SAFETY: just checked: mapped user-writable in the loaded address space.
    #[allow(unsafe_code)]
    unsafe {
        user_copy::copy_to_user(address, data)
    };
    Ok(())
}
