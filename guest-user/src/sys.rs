//! System calls: the raw `SYSCALL` instruction and one safe wrapper per call.
//!
//! Convention (guest-kernel/abi/src/syscall.rs): RAX = number, arguments in RDI, RSI, RDX, R10,
//! R8, R9; RAX = result, a negative [`Errno`] on failure; RCX and R11 clobbered.
#![allow(unsafe_code)]

use rampart_kernel_abi::syscall::{Errno, ProcessInfo, Syscall};

/// Largest magnitude of an error result (Linux's convention: -4095..-1 are errors).
const MAX_ERRNO: i64 = 4095;

/// Issues system call `number` with six arguments and returns RAX unchanged.
///
/// # Safety
/// The kernel validates every pointer (EFAULT, never a kernel fault), so the only way to break
/// memory safety is to pass a pointer to memory this program still uses with a length or
/// meaning the kernel then writes through: the caller guarantees any pointer it passes for the
/// kernel to write to is valid for that write and not aliased by a live reference. `Exit`
/// does not return.
pub unsafe fn raw(number: u64, args: [u64; 6]) -> u64 {
    let mut rax = number;
    // SAFETY: SYSCALL transfers to the kernel's entry point and returns with only RAX, RCX and
    // R11 changed (the ABI), all declared here; memory the kernel writes is the caller's
    // contract (see `# Safety`). The user stack is not touched by SYSCALL.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") rax,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    rax
}

/// Splits a raw result into a value or an [`Errno`] (unknown codes become `Invalid`).
pub fn decode(raw: u64) -> Result<u64, Errno> {
    let signed = raw as i64;
    if (-MAX_ERRNO..0).contains(&signed) {
        return Err(Errno::from_raw(signed).unwrap_or(Errno::Invalid));
    }
    Ok(raw)
}

/// A call whose pointer arguments the kernel only reads (or none at all).
fn call(number: Syscall, args: [u64; 6]) -> Result<u64, Errno> {
    // SAFETY: every caller passes pointers the kernel only reads (or plain values), so no Rust
    // reference can be written behind its back.
    decode(unsafe { raw(number as u64, args) })
}

fn args2(a: u64, b: u64) -> [u64; 6] {
    [a, b, 0, 0, 0, 0]
}

/// `write(fd, buf)`: bytes written.
pub fn write(fd: u64, buf: &[u8]) -> Result<usize, Errno> {
    let args = [fd, buf.as_ptr() as u64, buf.len() as u64, 0, 0, 0];
    call(Syscall::Write, args).map(|n| n as usize)
}

/// `read(fd, buf)`: bytes read; the console returns one line (with its `\n`) at most.
pub fn read(fd: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let args = [fd, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0];
    // SAFETY: `buf` is an exclusive borrow valid for `len` bytes of writes.
    decode(unsafe { raw(Syscall::Read as u64, args) }).map(|n| n as usize)
}

/// Ends this process with `code`.
pub fn exit(code: i64) -> ! {
    let _ = call(Syscall::Exit, args2(code as u64, 0));
    // The kernel never returns from exit; should it, fault rather than run on.
    loop {
        core::hint::spin_loop();
    }
}

/// Gives up the CPU to the next ready process.
pub fn yield_now() {
    let _ = call(Syscall::Yield, [0; 6]);
}

/// Sleeps at least `milliseconds`.
pub fn sleep(milliseconds: u64) {
    let _ = call(Syscall::Sleep, args2(milliseconds, 0));
}

pub fn getpid() -> u64 {
    call(Syscall::GetPid, [0; 6]).unwrap_or(0)
}

/// Milliseconds since the kernel started its timer.
pub fn uptime() -> u64 {
    call(Syscall::Uptime, [0; 6]).unwrap_or(0)
}

/// Starts initrd program `name` with the space-separated `args`; returns its pid.
pub fn spawn(name: &str, args: &str) -> Result<u64, Errno> {
    let raw_args = [
        name.as_ptr() as u64,
        name.len() as u64,
        args.as_ptr() as u64,
        args.len() as u64,
        0,
        0,
    ];
    call(Syscall::Spawn, raw_args)
}

/// Waits for child `pid` (any child with `None`); returns its pid and exit code.
pub fn wait(pid: Option<u64>) -> Result<(u64, i64), Errno> {
    let mut code: i64 = 0;
    let target = pid.unwrap_or(u64::MAX);
    let args = [target, &mut code as *mut i64 as u64, 0, 0, 0, 0];
    // SAFETY: `code` is a live local the kernel may write one i64 to.
    let pid = decode(unsafe { raw(Syscall::Wait as u64, args) })?;
    Ok((pid, code))
}

/// Ends process `pid` (exit code [`rampart_kernel_abi::syscall::EXIT_KILLED`]).
pub fn kill(pid: u64) -> Result<(), Errno> {
    call(Syscall::Kill, args2(pid, 0)).map(|_| ())
}

/// Moves the heap end to `address` (0 queries it); returns the new end.
pub fn brk(address: u64) -> Result<u64, Errno> {
    call(Syscall::Brk, args2(address, 0))
}

/// Fills `buf` with the process table; returns the number of rows.
pub fn processes(buf: &mut [ProcessInfo]) -> Result<usize, Errno> {
    let args = [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0];
    // SAFETY: `buf` is an exclusive borrow of `len` plain-data records.
    decode(unsafe { raw(Syscall::Processes as u64, args) }).map(|n| n as usize)
}

/// Fills `buf` with the initrd's programs, a `name\tdescription\n` line each (whole lines);
/// returns the bytes written.
pub fn programs(buf: &mut [u8]) -> Result<usize, Errno> {
    let args = [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0];
    // SAFETY: `buf` is an exclusive borrow of `len` bytes.
    decode(unsafe { raw(Syscall::Programs as u64, args) }).map(|n| n as usize)
}

/// VM exits counted by the hypervisor so far; `Err(NoSys)` when running natively.
pub fn exit_count() -> Result<u64, Errno> {
    call(Syscall::ExitCount, [0; 6])
}

/// TSC cycles the hypervisor has spent in exit handlers so far; `Err(NoSys)` natively.
pub fn exit_cycles() -> Result<u64, Errno> {
    call(Syscall::ExitCycles, [0; 6])
}

/// `bench(op, count)`: the kernel's help for the `bench` program's SMP rows
/// (`rampart_kernel_abi::syscall::bench`).
pub fn bench(operation: u64, count: u64) -> Result<u64, Errno> {
    call(Syscall::Bench, args2(operation, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_errors_and_values() {
        assert_eq!(decode(Errno::Fault.to_raw()), Err(Errno::Fault));
        assert_eq!(decode(5), Ok(5));
        assert_eq!(decode((-4000i64) as u64), Err(Errno::Invalid));
        assert_eq!(decode(0xffff_8000_0000_0000), Ok(0xffff_8000_0000_0000));
    }
}
