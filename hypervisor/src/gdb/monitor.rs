//! `monitor` commands: the hypervisor's own view, for the person at the debugger.
#![forbid(unsafe_code)]

use super::target::GuestTarget;
use crate::state;
use gdbstub::outputln;
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd};

const HELP: &str = "monitor commands: exits | vmx | ept ADDR | audit | sregs | help";

/// A parsed `monitor` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Exits,
    Vmx,
    Ept(u64),
    Audit,
    Sregs,
    Help,
    Unknown,
}

/// Parses `hex` (with or without 0x) or `0x...`/decimal? GDB users type 0x: a bare number
/// is read as hex too, like addresses in the GDB protocol.
fn parse_address(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

pub fn parse(line: &[u8]) -> Command {
    let Ok(line) = core::str::from_utf8(line) else {
        return Command::Unknown;
    };
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("exits"), None, _) => Command::Exits,
        (Some("vmx"), None, _) => Command::Vmx,
        (Some("ept"), Some(a), None) => parse_address(a).map_or(Command::Unknown, Command::Ept),
        (Some("audit"), None, _) => Command::Audit,
        (Some("sregs"), None, _) => Command::Sregs,
        (Some("help") | None, None, _) => Command::Help,
        _ => Command::Unknown,
    }
}

impl MonitorCmd for GuestTarget {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        match parse(cmd) {
            Command::Exits => outputln!(out, "exits: {}", state::STATS),
            Command::Vmx => {
                let s = state::get();
                let c = &s.controls;
                outputln!(out, "VMX: {}", s.caps);
                outputln!(
                    out,
                    "controls pin={:#x} proc={:#x} proc2={:#x} exit={:#x} entry={:#x}",
                    c.pinbased,
                    c.primary,
                    c.secondary,
                    c.exit,
                    c.entry
                );
            }
            Command::Ept(gpa) => ept(gpa, &mut out),
            Command::Audit => audit_log(&mut out),
            Command::Sregs => {
                let f = &self.frame;
                outputln!(
                    out,
                    "cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
                    f.cr0,
                    f.cr3,
                    f.cr4,
                    f.efer
                );
                outputln!(out, "fs_base={:#x} gs_base={:#x}", f.fs_base, f.gs_base);
            }
            Command::Help => outputln!(out, "{HELP}"),
            Command::Unknown => outputln!(out, "unknown command; {HELP}"),
        }
        Ok(())
    }
}

/// `monitor ept ADDR`: the EPT translation and permissions of a guest-physical address.
fn ept(gpa: u64, out: &mut ConsoleOutput<'_>) {
    let range = crate::handoff::PhysRange::new(gpa, 1);
    if state::get()
        .hypervisor_ranges
        .iter()
        .any(|r| r.overlaps(&range))
    {
        outputln!(out, "ept {gpa:#x}: hypervisor memory, not mapped");
        return;
    }
    let Some(mut guard) = state::EPT.try_lock() else {
        outputln!(out, "ept {gpa:#x}: EPT busy");
        return;
    };
    match guard.as_mut().map(|e| e.translate(gpa)) {
        Some(Some(t)) => outputln!(
            out,
            "ept {gpa:#x}: -> {:#x} {:?} page {} KiB memory type {:?}",
            t.host_physical,
            t.permissions,
            t.page_size / 1024,
            t.memory_type
        ),
        Some(None) => outputln!(out, "ept {gpa:#x}: not mapped"),
        None => outputln!(out, "ept {gpa:#x}: no EPT recorded"),
    }
}

/// Records `monitor audit` shows (the newest).
const AUDIT_SHOWN: u64 = 16;

/// `monitor audit`: the newest records of the audit log (the guest's blocked attempts).
pub fn audit_log(out: &mut ConsoleOutput<'_>) {
    let Some(log) = crate::audit::LOG.try_lock() else {
        outputln!(out, "audit log busy");
        return;
    };
    let count = log.count();
    outputln!(out, "audit: {count} records");
    for r in log.since(count.saturating_sub(AUDIT_SHOWN)) {
        let rule = rampart_hv_abi::Rule::try_from(r.rule)
            .ok()
            .map_or("?", |rule| rule.name());
        outputln!(
            out,
            "#{} {} rule {} RIP={:#x} GVA={:#x} GPA={:#x} detail={:#x}",
            r.sequence,
            crate::audit::access_name(rampart_hv_abi::Access::from_bits_retain(r.access)),
            rule,
            r.rip,
            r.gva,
            r.gpa,
            r.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(b"exits"), Command::Exits);
        assert_eq!(parse(b" vmx "), Command::Vmx);
        assert_eq!(parse(b"ept 0x4000000"), Command::Ept(0x400_0000));
        assert_eq!(parse(b"ept 1000"), Command::Ept(0x1000));
        assert_eq!(parse(b"ept"), Command::Unknown);
        assert_eq!(parse(b"ept zz"), Command::Unknown);
        assert_eq!(parse(b"exits now"), Command::Unknown);
        assert_eq!(parse(b""), Command::Help);
        assert_eq!(parse(b"\xff"), Command::Unknown);
    }
}
