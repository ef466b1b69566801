//! Fatal boot errors: report on serial (and screen while boot services run), print the result
//! line, shut down; halt if shutdown is not possible.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use rampart_loader::boot_area::BootAreaError;
use rampart_loader::config::ConfigError;
use rampart_loader::elf::ElfError;
use rampart_loader::memory_map::MemoryMapError;
use uefi::runtime::ResetType;
use uefi::Status;

use crate::arch::cpu::halt_forever;
use crate::log;

/// False once ExitBootServices ran: the console is gone, only serial remains.
static BOOT_SERVICES: AtomicBool = AtomicBool::new(true);

pub fn boot_services_exited() {
    BOOT_SERVICES.store(false, Ordering::SeqCst);
}

/// What went wrong with a file or a boot step.
#[derive(Debug)]
pub enum Problem {
    Config(ConfigError<'static>),
    Elf(ElfError),
    /// A required file is absent.
    Missing,
    /// A UEFI call failed: what was attempted and its status.
    Uefi(&'static str, Status),
    MemoryMap(MemoryMapError),
    BootArea(BootAreaError),
    /// Verified boot: the file's SHA-256 differs from the one built into BOOTX64.EFI.
    DigestMismatch {
        expected: [u8; 32],
        actual: [u8; 32],
    },
    /// Verified boot: BOOTX64.EFI carries no expected digests.
    Unstamped,
    /// Verified boot: a file is present that the stamp does not expect, or the reverse.
    UnexpectedFile,
    /// AllocatePages failed (`address` 0: any address).
    Allocate {
        address: u64,
        pages: u64,
        status: Status,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => error.fmt(f),
            Self::Elf(error) => error.fmt(f),
            Self::Missing => f.write_str("file not found"),
            Self::DigestMismatch { expected, actual } => write!(
                f,
                "SHA-256 {} does not match {} built into BOOTX64.EFI (verified boot): not booting it",
                crate::load::measure::Hex(actual),
                crate::load::measure::Hex(expected)
            ),
            Self::Unstamped => f.write_str(
                "BOOTX64.EFI carries no expected digests (verified boot): build the image with `cargo xtask image`, which stamps them",
            ),
            Self::UnexpectedFile => f.write_str(
                "present or absent against the digests built into BOOTX64.EFI (verified boot)",
            ),
            Self::Uefi(what, status) if *status == Status::NOT_FOUND => {
                write!(f, "{what}: not found")
            }
            Self::Uefi(what, status) => write!(f, "{what} failed: {status:?}"),
            Self::MemoryMap(error) => error.fmt(f),
            Self::BootArea(error) => error.fmt(f),
            Self::Allocate {
                address: 0,
                pages,
                status,
            } => {
                write!(f, "cannot allocate {pages} pages: {status:?}")
            }
            Self::Allocate {
                address,
                pages,
                status,
            } => {
                write!(
                    f,
                    "cannot allocate {pages} pages at {address:#x}: {status:?}"
                )?;
                // UEFI 2.10 7.2.1: AllocateAddress answers NOT_FOUND when the range is in use.
                if *status == Status::NOT_FOUND {
                    f.write_str(" (range not free in the firmware memory map)")?;
                }
                Ok(())
            }
        }
    }
}

/// A failed boot step: the file (or step) it concerns and the problem.
#[derive(Debug)]
pub struct BootError {
    pub file: &'static str,
    pub problem: Problem,
}

impl BootError {
    pub fn new(file: &'static str, problem: Problem) -> Self {
        Self { file, problem }
    }
}

/// Machine-readable failure reasons for the `RAMPART-RESULT` line.
#[derive(Clone, Copy)]
pub enum Outcome {
    BootError,
    NoVmx,
    Panic,
}

impl Outcome {
    fn tag(self) -> &'static str {
        match self {
            Self::BootError => "boot-error",
            Self::NoVmx => "no-vmx",
            Self::Panic => "panic",
        }
    }
}

/// Reports a boot error and stops.
pub fn boot_error(error: &BootError) -> ! {
    match &error.problem {
        // The config error names `boot.cfg line N` itself: prefix only the directory.
        Problem::Config(config) => stop(
            Outcome::BootError,
            format_args!("error: \\rampart\\{config}"),
        ),
        problem => stop(
            Outcome::BootError,
            format_args!("error: {}: {problem}", error.file),
        ),
    }
}

/// Prints `[fw] {message}` on serial and screen, the result line, then shuts down.
pub fn stop(outcome: Outcome, message: fmt::Arguments<'_>) -> ! {
    log::line(
        rampart_loader::config::LogLevel::Error,
        format_args!("{message}"),
    );
    if BOOT_SERVICES.load(Ordering::SeqCst) {
        uefi::system::with_stdout(|out| {
            let _ = writeln!(out, "[fw] {message}");
        });
    }
    log::raw_line(format_args!("RAMPART-RESULT: FAIL {}", outcome.tag()));
    // Runtime services stay valid after ExitBootServices (no SetVirtualAddressMap was called).
    // The binding types ResetSystem as never returning; should firmware break that promise the
    // caller below is not reached either, so halting is the fallback only when the system
    // table is missing.
    if uefi::table::system_table_raw().is_some() {
        uefi::runtime::reset(ResetType::SHUTDOWN, Status::ABORTED, None);
    }
    halt_forever()
}
