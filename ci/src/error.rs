//! The runner's error type: one small enum whose variants say what failed, plus a `context` helper.

use std::fmt;
use std::io;

/// Everything that can stop a runner command before it produces a verdict.
#[derive(Debug)]
pub enum Error {
    /// The command line was not understood.
    Usage(String),
    /// A host tool, package, file or Rust target is missing.
    Setup(String),
    /// A child command ran and failed.
    Command { what: String, detail: String },
    /// A file system or process operation failed.
    Io { what: String, source: io::Error },
    /// The disk image could not be written.
    Image(String),
}

/// Shorthand used by every module.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "usage: {msg} (see `cargo xtask help`)"),
            Error::Setup(msg) => write!(f, "setup: {msg}"),
            Error::Command { what, detail } => write!(f, "{what} failed: {detail}"),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Image(msg) => write!(f, "disk image: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// Attaches a description of the failed operation to an I/O error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}
