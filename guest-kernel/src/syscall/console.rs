//! Console and time system calls: write, read, uptime, exit_count, exit_cycles.

use super::{user, Arguments};
use crate::arch::hypercall;
use crate::process::{self, Blocked};
use crate::{console, time};
use rampart_kernel_abi::syscall::{Errno, STATE_WAITING};

/// Bytes copied per step (the kernel stack is small).
const CHUNK: usize = 256;
const STDIN: u64 = 0;
const STDOUT: u64 = 1;
const STDERR: u64 = 2;

/// `write(fd, buf, len)`: fd 1 and 2 go to COM1 unchanged.
pub fn write(arguments: &Arguments) -> Result<u64, Errno> {
    let [fd, address, length, ..] = *arguments;
    if fd != STDOUT && fd != STDERR {
        return Err(Errno::Invalid);
    }
    user::check(address, length, crate::mm::user_range::Direction::Read)?;
    let mut buffer = [0u8; CHUNK];
    let mut done = 0;
    while done < length {
        let step = (length - done).min(CHUNK as u64) as usize;
        user::read(address + done, &mut buffer[..step])?;
        console::write_raw(&buffer[..step]);
        done += step as u64;
    }
    Ok(length)
}

/// `read(0, buf, len)`: blocks until a line is complete; returns it with its `\n` (or the part
/// that fits; the rest comes with the next read).
pub fn read(arguments: &Arguments) -> Result<u64, Errno> {
    let [fd, address, length, ..] = *arguments;
    if fd != STDIN {
        return Err(Errno::Invalid);
    }
    user::check(address, length, crate::mm::user_range::Direction::Write)?;
    if length == 0 {
        return Ok(0);
    }
    let mut buffer = [0u8; CHUNK];
    let wanted = (length as usize).min(CHUNK);
    loop {
        let count = console::read_line(&mut buffer[..wanted]);
        if count > 0 {
            user::write(address, &buffer[..count])?;
            return Ok(count as u64);
        }
        process::block_current(STATE_WAITING, Some(Blocked::Console), None);
    }
}

/// `uptime()`: milliseconds since the timer started.
pub fn uptime(_: &Arguments) -> Result<u64, Errno> {
    Ok(time::uptime_ms())
}

/// `exit_count()`: the hypervisor's VM-exit total, or ENOSYS without Rampart.
pub fn exit_count(_: &Arguments) -> Result<u64, Errno> {
    let rampart = hypercall::rampart().ok_or(Errno::NoSys)?;
    let count = rampart.exit_count();
    u64::try_from(count).map_err(|_| Errno::NoSys)
}

/// `exit_cycles()`: TSC cycles the hypervisor has spent in exit handlers, or ENOSYS without
/// Rampart.
pub fn exit_cycles(_: &Arguments) -> Result<u64, Errno> {
    let rampart = hypercall::rampart().ok_or(Errno::NoSys)?;
    let cycles = rampart.exit_cycles();
    u64::try_from(cycles).map_err(|_| Errno::NoSys)
}
