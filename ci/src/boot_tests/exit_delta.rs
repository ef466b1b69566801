//! The exit counts a program prints around its measured loop (`sysloop`, `pingpong`):
//! `PROGRAM: N WHAT, exits before=B after=A delta=D`, checked against what the policy allows.

use super::shell::Flavour;

/// The VM exits a program's measured loop may cause under Rampart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exits {
    /// None at all: system calls, and since per-CPU roots (issue 19) the process switches of
    /// a ping-pong under either page-table policy (no CR3 load).
    None,
}

impl Exits {
    /// The largest delta allowed for `n` operations.
    fn allowed(self, _n: u64) -> u64 {
        match self {
            Self::None => 0,
        }
    }
}

/// `PROGRAM: N WHAT, exits before=B after=A delta=D` (hv: D at most what `exits` allows for N)
/// or `... exits n/a` (native).
pub fn check_exit_delta(
    part: &[String],
    program: &str,
    what: &str,
    flavour: Flavour,
    exits: Exits,
) -> Result<Option<(u64, u64)>, String> {
    let prefix = format!("{program}: ");
    let line = part
        .iter()
        .find(|l| l.contains(&prefix) && l.contains(what))
        .ok_or_else(|| format!("run {program}: no `{prefix}... {what}, exits ...` line"))?;
    match flavour {
        Flavour::Native if line.contains("exits n/a (no hypervisor)") => Ok(None),
        Flavour::Native => Err(format!(
            "run {program}: natively want `exits n/a`, got `{line}`"
        )),
        Flavour::Hypervisor => {
            let counts = line
                .split_once("exits ")
                .and_then(|(_, rest)| super::expect::parse_counts(rest))
                .ok_or_else(|| format!("run {program}: cannot parse `{line}`"))?;
            let get = |key: &str| counts.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let n = line[line.find(&prefix).unwrap_or(0) + prefix.len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            let allowed = exits.allowed(n.unwrap_or(0));
            match (get("before"), get("delta")) {
                (Some(before), Some(delta)) if delta <= allowed => Ok(Some((before, delta))),
                _ if allowed == 0 => Err(format!(
                    "run {program}: want `delta=0` (no VM exits), got `{line}`"
                )),
                _ => Err(format!(
                    "run {program}: want `delta` at most {allowed} (one per address-space switch), got `{line}`"
                )),
            }
        }
    }
}
