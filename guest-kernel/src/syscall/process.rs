//! Process system calls: exit, yield, sleep, getpid, spawn, wait, kill, processes.

use super::{user, Arguments};
use crate::process::{self, ANY_CHILD};
use crate::sched::queue::ticks_for;
use crate::time;
use rampart_kernel_abi::syscall::{Errno, ProcessInfo, MAX_ARGS, MAX_NAME, STATE_SLEEPING};
use rampart_kernel_abi::{about, initrd};

/// `exit(code)`.
pub fn exit(arguments: &Arguments) -> Result<u64, Errno> {
    process::exit_current(arguments[0] as i64)
}

/// `yield()`.
pub fn yield_now(_: &Arguments) -> Result<u64, Errno> {
    process::schedule();
    Ok(0)
}

/// `sleep(milliseconds)`.
pub fn sleep(arguments: &Arguments) -> Result<u64, Errno> {
    let ticks = ticks_for(arguments[0], time::hz());
    if ticks == 0 {
        process::schedule();
    } else {
        let wake = time::ticks().saturating_add(ticks);
        process::block_current(STATE_SLEEPING, None, Some(wake));
    }
    Ok(0)
}

/// `getpid()`.
pub fn getpid(_: &Arguments) -> Result<u64, Errno> {
    Ok(process::current_pid())
}

/// `spawn(name, name_len, args, args_len)`.
pub fn spawn(arguments: &Arguments) -> Result<u64, Errno> {
    let [name, name_len, args, args_len, ..] = *arguments;
    if name_len == 0 || name_len > MAX_NAME as u64 {
        user::check(name, name_len, crate::mm::user_range::Direction::Read)?;
        return Err(Errno::NoEntry);
    }
    if args_len > MAX_ARGS as u64 {
        return Err(Errno::TooBig);
    }
    let mut name_buffer = [0u8; MAX_NAME];
    let name_bytes = &mut name_buffer[..name_len as usize];
    user::read(name, name_bytes)?;
    let mut args_buffer = [0u8; MAX_ARGS];
    let args_bytes = &mut args_buffer[..args_len as usize];
    user::read(args, args_bytes)?;
    let name = core::str::from_utf8(name_bytes).map_err(|_| Errno::NoEntry)?;
    process::spawn(name, args_bytes, process::current_pid())
}

/// `wait(pid, status_out)`.
pub fn wait(arguments: &Arguments) -> Result<u64, Errno> {
    let [pid, status, ..] = *arguments;
    if status != 0 {
        user::check(status, 8, crate::mm::user_range::Direction::Write)?;
    }
    let pid = if pid == ANY_CHILD { ANY_CHILD } else { pid };
    let (child, code) = process::wait(pid)?;
    if status != 0 {
        user::write(status, &code.to_le_bytes())?;
    }
    Ok(child)
}

/// `kill(pid)`.
pub fn kill(arguments: &Arguments) -> Result<u64, Errno> {
    process::kill(arguments[0])
}

/// `processes(buf, count)`.
pub fn processes(arguments: &Arguments) -> Result<u64, Errno> {
    let [buffer, count, ..] = *arguments;
    const ROW: u64 = core::mem::size_of::<ProcessInfo>() as u64;
    let count = count.min(64);
    user::check(buffer, count * ROW, crate::mm::user_range::Direction::Write)?;
    let mut rows = [ProcessInfo::EMPTY; 64];
    let filled = process::list(&mut rows[..count as usize]);
    for (index, row) in rows[..filled].iter().enumerate() {
        user::write(buffer + index as u64 * ROW, &row_bytes(row))?;
    }
    Ok(filled as u64)
}

/// The ABI layout of a row (repr(C), 64 bytes, little-endian).
fn row_bytes(row: &ProcessInfo) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    bytes[0..8].copy_from_slice(&row.pid.to_le_bytes());
    bytes[8..16].copy_from_slice(&row.parent.to_le_bytes());
    bytes[16..20].copy_from_slice(&row.state.to_le_bytes());
    bytes[20..24].copy_from_slice(&row.cpu.to_le_bytes());
    bytes[24..32].copy_from_slice(&row.ticks.to_le_bytes());
    bytes[32..64].copy_from_slice(&row.name);
    bytes
}

/// `programs(buf, len)`: one `name\tdescription\n` line per initrd program, whole lines only.
pub fn programs(arguments: &Arguments) -> Result<u64, Errno> {
    let [buffer, length, ..] = *arguments;
    // No listing is longer: the check below need not walk more of the caller's pages.
    const LONGEST: u64 = (initrd::MAX_FILES * (MAX_NAME + about::MAX_TEXT + 2)) as u64;
    let length = length.min(LONGEST);
    user::check(buffer, length, crate::mm::user_range::Direction::Write)?;
    let mut written = 0u64;
    let mut full = false;
    let mut result = Ok(());
    process::programs(|name, description| {
        let mut line = [0u8; MAX_NAME + 1 + about::MAX_TEXT + 1];
        let mut at = 0;
        for part in [name.as_bytes(), b"\t", description.as_bytes(), b"\n"] {
            let Some(room) = line.get_mut(at..at + part.len()) else {
                return;
            };
            room.copy_from_slice(part);
            at += part.len();
        }
        full |= written + at as u64 > length;
        if result.is_err() || full {
            return;
        }
        result = user::write(buffer + written, &line[..at]);
        written += at as u64;
    });
    result.map(|()| written)
}
