//! System calls.
//!
//! Convention (like Linux x86-64): `SYSCALL` with RAX = [`Syscall`] number, arguments in RDI,
//! RSI, RDX, R10, R8, R9; the result in RAX: a non-negative value on success or a negative
//! [`Errno`]. RCX and R11 are clobbered (SYSCALL saves RIP and RFLAGS there); all other
//! registers are preserved. A user pointer that is outside user space, unmapped, not writable
//! where the kernel writes, or wraps around yields [`Errno::Fault`], never a kernel fault.

/// System call numbers (RAX); `Syscall::try_from(rax)` decodes one.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, num_enum::TryFromPrimitive)]
pub enum Syscall {
    /// `write(fd, buf, len) -> bytes`: fd 1 and 2 are the console.
    Write = 0,
    /// `read(fd, buf, len) -> bytes`: fd 0 is the console; blocks until at least one byte.
    Read = 1,
    /// `exit(code) -> !`.
    Exit = 2,
    /// `yield() -> 0`.
    Yield = 3,
    /// `sleep(milliseconds) -> 0`.
    Sleep = 4,
    /// `getpid() -> pid`.
    GetPid = 5,
    /// `spawn(name, name_len, args, args_len) -> pid`: runs the initrd program `name` with the
    /// space-separated argument string `args`.
    Spawn = 6,
    /// `wait(pid, status_out) -> pid`: waits for child `pid` (or any child if `pid` is
    /// `u64::MAX`) to exit; writes its exit code (i64) to `status_out` unless it is 0.
    Wait = 7,
    /// `brk(address) -> break`: moves the end of the heap; 0 queries it.
    Brk = 8,
    /// `uptime() -> milliseconds` since the kernel started its timer.
    Uptime = 9,
    /// `kill(pid) -> 0`: ends process `pid` (exit code [`EXIT_KILLED`]).
    Kill = 10,
    /// `processes(buf, count) -> entries`: fills up to `count` [`ProcessInfo`] records.
    Processes = 11,
    /// `exit_count() -> exits`: VM exits counted by the hypervisor so far, not counting these
    /// queries; [`Errno::NoSys`] without the Rampart hypervisor.
    ExitCount = 12,
    /// `exit_cycles() -> cycles`: TSC cycles the hypervisor has spent handling VM exits so far
    /// (the query's own exit included); [`Errno::NoSys`] without the Rampart hypervisor.
    ExitCycles = 13,
    /// `attacks() -> 0`: runs the kernel's attack suite (the "compromised kernel" of the
    /// `attacks` cargo feature), printing one table row per attack; [`Errno::NoSys`] in kernels
    /// built without it.
    Attacks = 14,
    /// `bench(op, count) -> value`: kernel help for the `bench` program's SMP rows, see
    /// [`bench`]: [`bench::CPUS`], [`bench::IPI`], [`bench::SHOOTDOWN`].
    Bench = 15,
    /// `fuzz(count, seed) -> 0 | 1`: the kernel's exit fuzzer (`attacks` cargo feature):
    /// `count` random VM-exit operations from ring 0 on every CPU, drawn from `seed`, each
    /// checked; 0 if every outcome was the defined one. [`Errno::NoSys`] without the feature.
    Fuzz = 16,
    /// `programs(buf, len) -> bytes`: the initrd's programs, one line each, `name`, a tab, its
    /// description ([`crate::about`]; empty if it has none) and `\n`, in archive order; as many
    /// whole lines as fit in `len` bytes (`len` beyond the longest possible listing is ignored).
    Programs = 17,
}

/// The operations of [`Syscall::Bench`] (RDI) and their results.
pub mod bench {
    /// `bench(CPUS, 0) -> (online << 32) | current`: the number of online CPUs and the index of
    /// the CPU running the caller (0 = boot CPU).
    pub const CPUS: u64 = 0;
    /// `bench(IPI, count) -> others`: `count` round trips of the kernel's TLB-shootdown IPI
    /// (a fixed IPI to every other online CPU, each answering by clearing its request bit),
    /// invalidating a page that stays mapped; returns how many other CPUs were asked.
    pub const IPI: u64 = 1;
    /// `bench(SHOOTDOWN, count) -> 0`: `count` `ProtectRange` hypercalls keeping read/write on
    /// one scratch frame (no right changes; the hypervisor still shoots down every other vCPU's
    /// EPT translations); ENOSYS without the hypervisor.
    pub const SHOOTDOWN: u64 = 2;
    /// Most operations one call performs (interrupts stay off for the call).
    pub const MAX_COUNT: u64 = 1_000;
}

impl Syscall {
    pub const COUNT: usize = 18;
}

/// Error codes (negated in RAX), numbered as Linux's.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, num_enum::TryFromPrimitive)]
pub enum Errno {
    /// No such program (spawn).
    NoEntry = 2,
    /// No such process (kill, wait).
    NoProcess = 3,
    /// Argument string too long.
    TooBig = 7,
    /// Not a valid executable.
    NotExecutable = 8,
    /// No child to wait for.
    NoChild = 10,
    /// Out of memory.
    NoMemory = 12,
    /// A user pointer is bad.
    Fault = 14,
    /// An argument is invalid.
    Invalid = 22,
    /// Unknown system call.
    NoSys = 38,
}

impl Errno {
    /// Decodes a negative RAX value (the negated code).
    pub fn from_raw(raw: i64) -> Option<Self> {
        Self::try_from(raw.checked_neg()?).ok()
    }

    /// The value in RAX.
    pub const fn to_raw(self) -> u64 {
        (-(self as i64)) as u64
    }

    pub const fn name(self) -> &'static str {
        match self {
            Errno::NoEntry => "ENOENT",
            Errno::NoProcess => "ESRCH",
            Errno::TooBig => "E2BIG",
            Errno::NotExecutable => "ENOEXEC",
            Errno::NoChild => "ECHILD",
            Errno::NoMemory => "ENOMEM",
            Errno::Fault => "EFAULT",
            Errno::Invalid => "EINVAL",
            Errno::NoSys => "ENOSYS",
        }
    }
}

/// Exit code of a process ended by `kill`.
pub const EXIT_KILLED: i64 = -9;
/// Exit code of a process ended by a CPU exception it caused.
pub const EXIT_FAULTED: i64 = -11;

/// Longest program name and argument string.
pub const MAX_NAME: usize = 32;
pub const MAX_ARGS: usize = 256;

/// Process states in [`ProcessInfo::state`].
pub const STATE_RUNNING: u32 = 0;
pub const STATE_READY: u32 = 1;
pub const STATE_SLEEPING: u32 = 2;
pub const STATE_WAITING: u32 = 3;
pub const STATE_ZOMBIE: u32 = 4;

/// One row of `processes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u64,
    pub parent: u64,
    pub state: u32,
    /// The CPU (index, 0 = boot CPU) it runs on or last ran on.
    pub cpu: u32,
    /// Timer ticks spent running.
    pub ticks: u64,
    /// NUL-padded program name.
    pub name: [u8; MAX_NAME],
}

impl ProcessInfo {
    pub const EMPTY: Self = Self {
        pid: 0,
        parent: 0,
        state: 0,
        cpu: 0,
        ticks: 0,
        name: [0; MAX_NAME],
    };

    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

const _: () = assert!(core::mem::size_of::<ProcessInfo>() == 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for raw in 0..Syscall::COUNT as u64 {
            assert_eq!(Syscall::try_from(raw).ok().map(|s| s as u64), Some(raw));
        }
        assert_eq!(Syscall::try_from(Syscall::COUNT as u64).ok(), None);
    }

    #[test]
    fn errors_are_negative_in_rax() {
        assert_eq!(Errno::Fault.to_raw() as i64, -14);
        assert_eq!(Errno::from_raw(-14), Some(Errno::Fault));
        assert_eq!(Errno::from_raw(14), None);
    }
}
