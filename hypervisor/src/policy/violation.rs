//! The verdict on a blocked EPT access, decided in one place: the exit handler records what it
//! saw ([`Violation`]: the address, the access, the rights the page had, what devices and
//! locks say of it, the event being delivered), and [`verdict`] names the rule broken and what
//! the guest gets. Pure, host-tested (`exits::policy` does the recording and the acting).
#![forbid(unsafe_code)]

use super::{operations, ProtectedLayout};
use crate::ept::entry::Permissions;
use rampart_hv_abi::{Access, Rule};

/// What the exit saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub gpa: u64,
    /// The access that exited: `READ`, `WRITE` or `EXECUTE`.
    pub access: Access,
    /// The rights EPT gave the page (qualification bits 5:3, and user-mode execute under
    /// mode-based execute control).
    pub allowed: Permissions,
    /// What the platform's devices say of a write to `gpa` (an ECAM window's rule, or
    /// `PlatformDevice`); `None` for other accesses and addresses.
    pub device_rule: Option<Rule>,
    /// `gpa` is in a descriptor-table page `LockDescriptorTables` made read-only.
    pub locked_table: bool,
    /// `gpa` is in a page-table page `LockKernelMappings` made read-only.
    pub protected_frame: bool,
    /// The IDT-vectoring information at the exit (SDM Vol. 3C 28.2.4).
    pub vectoring: u64,
}

/// What a blocked access becomes when it happened while the CPU was delivering an event: during
/// a #VE, a #DF, a #PF or a contributory exception it is a double fault, during a #DF a triple
/// fault (SDM Vol. 3A 7.15, Table 7-5); otherwise the #VE itself. Without this, a #VE whose own
/// delivery is blocked would be injected again forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nested {
    No,
    DoubleFault,
    TripleFault,
}

/// The decision: the rule the access broke (its audit record's) and what the guest gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub rule: Rule,
    pub nested: Nested,
}

/// Decides on `violation`. Every EPT violation breaks a rule: touching a page with no rights,
/// or beyond what EPT maps, is `ProtectedRange`.
pub fn verdict(layout: &ProtectedLayout, violation: &Violation) -> Verdict {
    Verdict {
        rule: rule(layout, violation),
        nested: nested(violation.vectoring),
    }
}

fn rule(layout: &ProtectedLayout, v: &Violation) -> Rule {
    let write = v.access.contains(Access::WRITE);
    let measured = operations::measured_rule(layout, v.gpa);
    if write && v.protected_frame {
        Rule::PageTable
    } else if layout.in_hypervisor(v.gpa) {
        Rule::HypervisorMemory
    } else if let Some(rule) = v.device_rule.filter(|_| write) {
        rule
    } else if (v.allowed & Permissions::ALL).is_empty() {
        // A page left with no rights (ProtectRange to ---) or beyond what EPT maps: the guest
        // gets #VE like for any other block; nothing the guest touches stops the hypervisor.
        Rule::ProtectedRange
    } else if v.access.contains(Access::EXECUTE) {
        Rule::NotExecutable
    } else if measured == Some(Rule::KernelText) {
        // A write, or a read of execute-only text.
        Rule::KernelText
    } else if !write {
        Rule::ProtectedRange
    } else if v.locked_table {
        Rule::LockedDescriptorTable
    } else if let Some(rule) = measured {
        rule // Kernel rodata or the initrd.
    } else if v.allowed.executable() {
        Rule::ExecutableNotWritable
    } else {
        Rule::ProtectedRange
    }
}

/// See [`Nested`]: from the IDT-vectoring information (valid bit 31, type bits 10:8, vector).
pub fn nested(vectoring: u64) -> Nested {
    const VALID: u64 = 1 << 31;
    const TYPE_MASK: u64 = 0b111 << 8;
    const TYPE_HARDWARE_EXCEPTION: u64 = 3 << 8;
    if vectoring & VALID == 0 || vectoring & TYPE_MASK != TYPE_HARDWARE_EXCEPTION {
        return Nested::No;
    }
    match vectoring & 0xff {
        8 => Nested::TripleFault,
        // #DE, #TS, #NP, #SS, #GP (contributory), #PF, #VE.
        0 | 10..=14 | 20 => Nested::DoubleFault,
        _ => Nested::No,
    }
}

#[cfg(test)]
#[path = "violation_tests.rs"]
mod tests;
