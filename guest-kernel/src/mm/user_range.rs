//! Validation of user pointers passed to system calls: a range is acceptable only if it lies in
//! user space without wrapping and every page of it is mapped user-accessible (and writable if
//! the kernel writes to it). Pure: the page lookup is a closure.

use super::layout::USER_TOP;
use super::page_table::{PAGE_SIZE, PRESENT, USER, WRITABLE};
use rampart_kernel_abi::syscall::Errno;

/// Whether the kernel reads or writes the user range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// Checks `[address, address + length)`; `leaf(page)` returns the page's leaf entry if mapped.
/// A zero-length range is always fine (nothing is touched).
pub fn check(
    address: u64,
    length: u64,
    direction: Direction,
    leaf: impl Fn(u64) -> Option<u64>,
) -> Result<(), Errno> {
    if length == 0 {
        return Ok(());
    }
    let end = address.checked_add(length).ok_or(Errno::Fault)?;
    if end > USER_TOP {
        return Err(Errno::Fault);
    }
    let needed = match direction {
        Direction::Read => PRESENT | USER,
        Direction::Write => PRESENT | USER | WRITABLE,
    };
    let mut page = address & !(PAGE_SIZE - 1);
    while page < end {
        let entry = leaf(page).ok_or(Errno::Fault)?;
        if entry & needed != needed {
            return Err(Errno::Fault);
        }
        page += PAGE_SIZE;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(page: u64) -> Option<u64> {
        match page {
            0x40_0000 => Some(0x1000 | PRESENT | USER),
            0x40_1000 => Some(0x2000 | PRESENT | USER | WRITABLE),
            0x40_2000 => Some(0x3000 | PRESENT),
            _ => None,
        }
    }

    #[test]
    fn good_ranges_pass() {
        assert_eq!(check(0x40_0010, 0x1800, Direction::Read, leaf), Ok(()));
        assert_eq!(check(0x40_1000, 0x1000, Direction::Write, leaf), Ok(()));
        assert_eq!(check(0, 0, Direction::Write, leaf), Ok(()));
    }

    #[test]
    fn bad_ranges_are_efault() {
        let fault = Err(Errno::Fault);
        assert_eq!(check(0, 1, Direction::Read, leaf), fault, "null");
        assert_eq!(
            check(0x40_0000, 8, Direction::Write, leaf),
            fault,
            "read-only"
        );
        assert_eq!(
            check(0x40_1ff0, 0x20, Direction::Read, leaf),
            fault,
            "supervisor page"
        );
        assert_eq!(
            check(u64::MAX - 4, 16, Direction::Read, leaf),
            fault,
            "wraps"
        );
        assert_eq!(
            check(0xffff_8000_0000_0000, 8, Direction::Read, |_| Some(7)),
            fault
        );
        assert_eq!(check(USER_TOP - 8, 16, Direction::Read, |_| Some(7)), fault);
    }
}
