//! The `Attacks` and `Fuzz` system calls: the attack suite and the exit fuzzer of the
//! `attacks` cargo feature, or ENOSYS.

use super::Arguments;
use rampart_kernel_abi::syscall::Errno;

/// `attacks()`: runs the suite and prints its table; ENOSYS in kernels built without it.
pub fn attacks(_: &Arguments) -> Result<u64, Errno> {
    #[cfg(feature = "attacks")]
    return crate::attacks::run::run();
    #[cfg(not(feature = "attacks"))]
    Err(Errno::NoSys)
}

/// `fuzz(count, seed)`: runs the exit fuzzer; ENOSYS in kernels built without it.
pub fn fuzz(arguments: &Arguments) -> Result<u64, Errno> {
    #[cfg(feature = "attacks")]
    return crate::fuzz::run::run(arguments[0], arguments[1]);
    #[cfg(not(feature = "attacks"))]
    {
        let _ = arguments;
        Err(Errno::NoSys)
    }
}
