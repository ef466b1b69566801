//! The changes the guest may ask for, each checked against the policy before any page
//! changes (all or nothing), so W^X holds on every page and locks only tighten.

use super::layout::{ProtectedLayout, SegmentKind};
use crate::ept::builder::{Ept, EptError, TableMemory};
use crate::ept::entry::{MemoryType, Permissions};
use rampart_hv_abi::Rule;

const PAGE: u64 = 4096;
/// Longest range one request may name (bounds the work done in one VM exit).
pub const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// Page-granular view of the guest-physical rights (the EPT; a map in the fuzz tests).
pub trait PageTable {
    /// Rights and memory type of the page at `gpa`; `None` if it is not mapped.
    fn page(&mut self, gpa: u64) -> Option<(Permissions, Option<MemoryType>)>;
    /// Gives `[gpa, gpa + length)` these rights, as write-back RAM (all a request changes).
    fn set(&mut self, gpa: u64, length: u64, rights: Permissions) -> Result<(), EptError>;
}

impl<M: TableMemory> PageTable for Ept<M> {
    fn page(&mut self, gpa: u64) -> Option<(Permissions, Option<MemoryType>)> {
        self.translate(gpa).map(|t| (t.permissions, t.memory_type))
    }

    fn set(&mut self, gpa: u64, length: u64, rights: Permissions) -> Result<(), EptError> {
        self.map(gpa, length, rights, MemoryType::WriteBack)
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Unaligned, empty, too long, wrapping, or not guest RAM: an error code, no audit record.
    OutOfRange,
    /// The policy forbids it: an error code and an audit record naming the rule and page.
    Denied { rule: Rule, gpa: u64 },
    /// EPT tables ran out while splitting a large page.
    Ept(EptError),
}

impl From<EptError> for Denial {
    fn from(e: EptError) -> Self {
        Self::Ept(e)
    }
}

/// Gives the measured kernel image and initrd their rights (before the first guest
/// instruction, over an identity map whose RAM is RW-).
pub fn apply_initial(table: &mut impl PageTable, layout: &ProtectedLayout) -> Result<(), EptError> {
    for (range, rights) in layout.overrides() {
        table.set(range.start, range.length, rights)?;
    }
    Ok(())
}

/// The pages of a request: `[gpa, gpa + round_up(length))`, validated.
fn pages(gpa: u64, length: u64) -> Result<impl Iterator<Item = u64>, Denial> {
    let rounded = length.checked_add(PAGE - 1).ok_or(Denial::OutOfRange)? & !(PAGE - 1);
    let end = gpa.checked_add(rounded).ok_or(Denial::OutOfRange)?;
    if !gpa.is_multiple_of(PAGE) || length == 0 || rounded > MAX_REQUEST_BYTES {
        return Err(Denial::OutOfRange);
    }
    Ok((gpa..end).step_by(PAGE as usize))
}

/// Rights of a page that requests may name: mapped write-back RAM outside the hypervisor.
pub fn ram_page(
    table: &mut impl PageTable,
    layout: &ProtectedLayout,
    page: u64,
) -> Result<Permissions, Denial> {
    if layout.in_hypervisor(page) {
        return Err(Denial::Denied {
            rule: Rule::HypervisorMemory,
            gpa: page,
        });
    }
    match table.page(page) {
        Some((rights, Some(MemoryType::WriteBack))) => Ok(rights),
        _ => Err(Denial::OutOfRange),
    }
}

/// The rule that protects a page of the measured layout, if any.
pub fn measured_rule(layout: &ProtectedLayout, page: u64) -> Option<Rule> {
    match layout.segment_at(page).map(|s| s.kind) {
        Some(SegmentKind::Text) => Some(Rule::KernelText),
        Some(SegmentKind::ReadOnly) => Some(Rule::KernelReadOnly),
        _ if layout.in_initrd(page) => Some(Rule::MeasuredModule),
        _ => None,
    }
}

/// `GrantExecute`: RW- pages holding exactly measured program text become executable
/// (`layout.program_text_rights`: R-X, or R and user-mode execute only under MBEC).
///
/// The content is compared only once no vCPU can write it (hypervisor/DESIGN.md invariant 9): the
/// pages first become R--, then `freeze` must make every other vCPU drop its cached writable
/// translations (an acknowledged shootdown), and only then does `content_matches(gpa, length)`
/// compare guest memory with the measured initrd. Comparing first would let another vCPU
/// rewrite the page between the compare and the grant, or during the compare itself. A page
/// whose content does not match goes back to RW- (adding rights needs no shootdown).
pub fn grant_execute(
    table: &mut impl PageTable,
    layout: &ProtectedLayout,
    gpa: u64,
    length: u64,
    freeze: impl FnOnce(),
    content_matches: impl FnOnce(u64, u64) -> bool,
) -> Result<(), Denial> {
    let rounded = check_swap(table, layout, gpa, length, Permissions::READ_WRITE)?;
    if let Err(e) = table.set(gpa, rounded, Permissions::READ) {
        // A split ran out of tables part-way: give back what was taken, so nothing is lost.
        let _ = table.set(gpa, rounded, Permissions::READ_WRITE);
        return Err(e.into());
    }
    freeze();
    if !content_matches(gpa, length) {
        table.set(gpa, rounded, Permissions::READ_WRITE)?;
        let rule = Rule::UnmeasuredCode;
        return Err(Denial::Denied { rule, gpa });
    }
    Ok(table.set(gpa, rounded, layout.program_text_rights)?)
}

/// `RevokeExecute`: granted (program text rights, not kernel text) pages return to RW-.
pub fn revoke_execute(
    table: &mut impl PageTable,
    layout: &ProtectedLayout,
    gpa: u64,
    length: u64,
) -> Result<(), Denial> {
    let rounded = check_swap(table, layout, gpa, length, layout.program_text_rights)?;
    Ok(table.set(gpa, rounded, Permissions::READ_WRITE)?)
}

/// Checks a W<->X swap request: every page is guest RAM outside the measured layout and has
/// exactly `current` rights. Returns the page-rounded length.
fn check_swap(
    table: &mut impl PageTable,
    layout: &ProtectedLayout,
    gpa: u64,
    length: u64,
    current: Permissions,
) -> Result<u64, Denial> {
    let mut rounded = 0;
    for page in pages(gpa, length)? {
        let measured = measured_rule(layout, page);
        if measured.is_some() || ram_page(table, layout, page)? != current {
            let rule = measured.unwrap_or(Rule::HypercallDenied);
            return Err(Denial::Denied { rule, gpa: page });
        }
        rounded += PAGE;
    }
    Ok(rounded)
}

/// `ProtectRange`: pages keep only `keep`, which must be a subset of what each page has.
pub fn protect_range(
    table: &mut impl PageTable,
    layout: &ProtectedLayout,
    gpa: u64,
    length: u64,
    keep: Permissions,
) -> Result<(), Denial> {
    // Write without read is an EPT misconfiguration (SDM Vol. 3C 29.3.3.1), and execute-only
    // needs a capability Rampart does not rely on: neither may be asked for.
    if (keep.writable() || keep.executable()) && !keep.readable() {
        return Err(Denial::OutOfRange);
    }
    for page in pages(gpa, length)? {
        if !ram_page(table, layout, page)?.contains(keep) {
            let rule = measured_rule(layout, page).unwrap_or(Rule::HypercallDenied);
            return Err(Denial::Denied { rule, gpa: page });
        }
    }
    for page in pages(gpa, length)? {
        table.set(page, PAGE, keep)?;
    }
    Ok(())
}
