//! The boot config `\rampart\boot.cfg`: `key = value` lines parsed into [`BootConfig`].
//!
//! Grammar: UTF-8 text, one `key = value` per line, `#` starts a comment line, blank lines are
//! ignored, keys and values are trimmed. There are no inline comments: for `cmdline` the value
//! is the rest of the line, `#` included. To add a key (`gdb`, `policy`, ...): add a [`Key`]
//! variant, its name, a field in [`BootConfig`] with its default, and a match arm in `apply`.

use core::fmt;

use rampart_boot_info::BootMode;

/// Longest accepted kernel command line in bytes (the BootInfo field keeps one spare byte).
pub const MAX_CMDLINE: usize = 255;

/// Log verbosity; the discriminant is the BootInfo `log_level` encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// The kernel command line, stored inline (no heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLine {
    bytes: [u8; MAX_CMDLINE],
    len: usize,
}

impl CommandLine {
    pub const EMPTY: Self = Self {
        bytes: [0; MAX_CMDLINE],
        len: 0,
    };

    /// The command line, or `None` if it is longer than [`MAX_CMDLINE`] bytes.
    pub fn new(text: &str) -> Option<Self> {
        let mut line = Self::EMPTY;
        line.bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        line.len = text.len();
        Some(line)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str`, so this cannot fail.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Everything the boot config can set; [`Default`] is the configuration of a missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootConfig {
    pub mode: BootMode,
    pub log: LogLevel,
    pub cmdline: CommandLine,
    /// `gdb = on`: the hypervisor waits for a debugger on COM2 before the guest's first
    /// instruction.
    pub gdb: bool,
    /// `pagetables = locked` (default): after the kernel's `LockKernelMappings` its page
    /// tables are read-only in EPT and every CR3 load is checked; `off`: neither (0 exits
    /// per address-space switch).
    pub lock_page_tables: bool,
}

impl Default for BootConfig {
    fn default() -> Self {
        Self {
            mode: BootMode::Hypervisor,
            log: LogLevel::Info,
            cmdline: CommandLine::EMPTY,
            gdb: false,
            lock_page_tables: true,
        }
    }
}

/// The keys the config understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Mode,
    Log,
    Cmdline,
    Gdb,
    PageTables,
}

impl Key {
    pub const ALL: [Key; 5] = [Key::Mode, Key::Log, Key::Cmdline, Key::Gdb, Key::PageTables];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Mode => "mode",
            Self::Log => "log",
            Self::Cmdline => "cmdline",
            Self::Gdb => "gdb",
            Self::PageTables => "pagetables",
        }
    }

    /// Accepted values, for error messages (`None`: free text).
    pub const fn expected(self) -> Option<&'static str> {
        match self {
            Self::Mode => Some("hv, native"),
            Self::Log => Some("error, warn, info, debug, trace"),
            Self::Cmdline => None,
            Self::Gdb => Some("on, off"),
            Self::PageTables => Some("locked, off"),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// What is wrong with one line of the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigProblem<'a> {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The line has no `=`.
    MissingEquals,
    /// Nothing before the `=`.
    EmptyKey,
    UnknownKey(&'a str),
    BadValue {
        key: Key,
        value: &'a str,
    },
    Duplicate {
        key: Key,
        first_line: usize,
    },
    CmdlineTooLong {
        len: usize,
    },
}

/// A config error: the 1-based line number and the problem found there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError<'a> {
    pub line: usize,
    pub problem: ConfigProblem<'a>,
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boot.cfg line {}: ", self.line)?;
        match self.problem {
            ConfigProblem::NotUtf8 => f.write_str("not valid UTF-8"),
            ConfigProblem::MissingEquals => f.write_str("expected 'key = value'"),
            ConfigProblem::EmptyKey => f.write_str("missing key before '='"),
            ConfigProblem::UnknownKey(key) => {
                write!(f, "unknown key '{key}' (expected ")?;
                for (index, known) in Key::ALL.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}{}", known.name())?;
                }
                f.write_str(")")
            }
            ConfigProblem::BadValue { key, value } => {
                write!(f, "bad value '{value}' for {}", key.name())?;
                match key.expected() {
                    Some(expected) => write!(f, " (expected {expected})"),
                    None => Ok(()),
                }
            }
            ConfigProblem::Duplicate { key, first_line } => {
                write!(
                    f,
                    "duplicate key '{}' (first set on line {first_line})",
                    key.name()
                )
            }
            ConfigProblem::CmdlineTooLong { len } => {
                write!(f, "cmdline is {len} bytes (max {MAX_CMDLINE})")
            }
        }
    }
}

/// Parses the whole file. `None` (file absent) is handled by the caller with `Default`.
pub fn parse(text: &[u8]) -> Result<BootConfig, ConfigError<'_>> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut config = BootConfig::default();
    // Line on which each key (indexed like `Key::ALL`) was set; 0 = not yet.
    let mut set_on = [0usize; Key::ALL.len()];
    for (index, raw_line) in text.split(|&byte| byte == b'\n').enumerate() {
        let line = index + 1;
        let fail = |problem| ConfigError { line, problem };
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let content = core::str::from_utf8(raw_line).map_err(|_| fail(ConfigProblem::NotUtf8))?;
        let content = content.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (name, value) = content
            .split_once('=')
            .ok_or(fail(ConfigProblem::MissingEquals))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return Err(fail(ConfigProblem::EmptyKey));
        }
        let key = Key::from_name(name).ok_or(fail(ConfigProblem::UnknownKey(name)))?;
        let slot = Key::ALL.iter().position(|&known| known == key).unwrap_or(0);
        if set_on[slot] != 0 {
            return Err(fail(ConfigProblem::Duplicate {
                key,
                first_line: set_on[slot],
            }));
        }
        set_on[slot] = line;
        apply(&mut config, key, value).map_err(fail)?;
    }
    Ok(config)
}

fn apply<'a>(config: &mut BootConfig, key: Key, value: &'a str) -> Result<(), ConfigProblem<'a>> {
    let bad = ConfigProblem::BadValue { key, value };
    match key {
        Key::Mode => {
            config.mode = match value {
                "hv" => BootMode::Hypervisor,
                "native" => BootMode::Native,
                _ => return Err(bad),
            }
        }
        Key::Log => {
            config.log = match value {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                "trace" => LogLevel::Trace,
                _ => return Err(bad),
            }
        }
        Key::Cmdline => {
            config.cmdline = CommandLine::new(value)
                .ok_or(ConfigProblem::CmdlineTooLong { len: value.len() })?;
        }
        Key::Gdb => {
            config.gdb = match value {
                "on" => true,
                "off" => false,
                _ => return Err(bad),
            }
        }
        Key::PageTables => {
            config.lock_page_tables = match value {
                "locked" => true,
                "off" => false,
                _ => return Err(bad),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
