//! The kernel command line (BootInfo): space-separated `key=value` options. Known: `hz=N`, the
//! timer frequency (100-1000, default 100); `crash=panic|triple-fault`, a deliberate failure for
//! the boot tests that check failures say so (kernels built with the `attacks` feature only);
//! `kpti=on|off`, kernel page-table isolation (default off, `mm::kpti`).

/// Timer frequency without `hz=`.
pub const DEFAULT_HZ: u64 = 100;
/// Allowed timer frequencies.
pub const HZ_RANGE: core::ops::RangeInclusive<u64> = 100..=1000;

/// The timer frequency asked for on `line`; `Err(text)` for a bad or out-of-range value.
pub fn hz(line: &str) -> Result<u64, &str> {
    match line
        .split_ascii_whitespace()
        .rev()
        .filter_map(|w| w.strip_prefix("hz="))
        .next()
    {
        None => Ok(DEFAULT_HZ),
        Some(text) => text
            .parse()
            .ok()
            .filter(|hz| HZ_RANGE.contains(hz))
            .ok_or(text),
    }
}

/// Whether `kpti=on` is asked for (the last `kpti=` wins); `Err(text)` for a value other than
/// `on` or `off`.
pub fn kpti(line: &str) -> Result<bool, &str> {
    match line
        .split_ascii_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("kpti="))
    {
        None | Some("off") => Ok(false),
        Some("on") => Ok(true),
        Some(text) => Err(text),
    }
}

/// A deliberate failure asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// A kernel panic after `ready`.
    Panic,
    /// An exception with no IDT at all, first thing at boot: a triple fault.
    TripleFault,
    /// The other CPUs switch to an undeclared copy of the boot CPU's root just before the
    /// page-table lock: under `pagetables = locked` the hypervisor must stop (fail closed).
    UncheckedRoot,
    /// The boot CPU links its own directory table (a lower-half table) into an unused
    /// kernel-half slot of its root just before the page-table lock: under `pagetables =
    /// locked` the hypervisor must refuse the lock.
    AliasCpuTable,
}

/// The `crash=` option of `line`, if any (unknown values are ignored).
pub fn crash(line: &str) -> Option<Crash> {
    line.split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("crash="))
        .find_map(|value| match value {
            "panic" => Some(Crash::Panic),
            "triple-fault" => Some(Crash::TripleFault),
            "unchecked-root" => Some(Crash::UncheckedRoot),
            "alias-cpu-table" => Some(Crash::AliasCpuTable),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_is_parsed() {
        assert_eq!(crash("hz=100 crash=panic"), Some(Crash::Panic));
        assert_eq!(crash("crash=triple-fault"), Some(Crash::TripleFault));
        assert_eq!(crash("crash=unchecked-root"), Some(Crash::UncheckedRoot));
        assert_eq!(crash("crash=alias-cpu-table"), Some(Crash::AliasCpuTable));
        assert_eq!(crash("crash=nope"), None);
        assert_eq!(crash(""), None);
    }

    #[test]
    fn kpti_is_parsed() {
        assert_eq!(kpti(""), Ok(false));
        assert_eq!(kpti("hz=250 kpti=on"), Ok(true));
        assert_eq!(kpti("kpti=on kpti=off"), Ok(false));
        assert_eq!(kpti("kpti=yes"), Err("yes"));
    }

    #[test]
    fn hz_is_parsed_and_checked() {
        assert_eq!(hz(""), Ok(100));
        assert_eq!(hz("log=debug hz=250"), Ok(250));
        assert_eq!(hz("hz=1000"), Ok(1000));
        assert_eq!(hz("hz=5000"), Err("5000"));
        assert_eq!(hz("hz=abc"), Err("abc"));
    }
}
