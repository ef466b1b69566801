//! The `Attacks` system call: the attack suite of the `attacks` cargo feature, or ENOSYS.

use super::Arguments;
use rampart_kernel_abi::syscall::Errno;

/// `attacks()`: runs the suite and prints its table; ENOSYS in kernels built without it.
pub fn attacks(_: &Arguments) -> Result<u64, Errno> {
    #[cfg(feature = "attacks")]
    return crate::attacks::run::run();
    #[cfg(not(feature = "attacks"))]
    Err(Errno::NoSys)
}
