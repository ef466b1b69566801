//! The `Attacks` system call: runs every attack of `list` in a kernel thread of its own, one
//! after the other, and prints a table row for each with the verdict (`verdict::judge`) drawn
//! from how the thread ended and from the audit records the hypervisor appended meanwhile.

use super::list::{self, ATTACKS};
use super::verdict::{self, Attempt, Ending, Tally};
use crate::arch::hypercall::{self, Rampart};
use crate::console::kprintln;
use crate::process;
use alloc::vec;
use alloc::vec::Vec;
use rampart_hv_abi::{AuditRecord, Rule};
use rampart_kernel_abi::syscall::Errno;
use spin::Mutex;

/// What the running attack's code reported before its thread ended normally.
static ATTEMPT: Mutex<Option<Attempt>> = Mutex::new(None);
/// At most this many audit records are read back per attack (one is expected).
const MAX_RECORDS: usize = 8;

/// The body of an attack thread: runs attack `index`, reports, ends.
extern "sysv64" fn attack_thread(index: u64) -> ! {
    let attempt = (ATTACKS[index as usize].run)();
    *ATTEMPT.lock() = Some(attempt);
    process::exit_current(0)
}

/// Runs the suite (from the `attacks` program's system call); blocks until it is done.
pub fn run() -> Result<u64, Errno> {
    let rampart = hypercall::rampart();
    let where_ = if rampart.is_some() {
        "under Rampart"
    } else {
        "natively"
    };
    kprintln!(
        "attacks: {} attacks, each in its own kernel thread, {where_}",
        ATTACKS.len()
    );
    if let Some(regions) = crate::boot::BOOT_INFO.get().map(|i| i.memory_regions()) {
        let holes: Vec<_> = super::hole::ram_holes(regions).collect();
        kprintln!("attacks: holes in the memory map above 1 MiB: {holes:x?}");
    }
    let first = audit_count(rampart.as_ref());
    let mut tally = Tally::default();
    for (index, attack) in ATTACKS.iter().enumerate() {
        let before = audit_count(rampart.as_ref());
        *ATTEMPT.lock() = None;
        let me = process::current_pid();
        let pid = process::spawn_kernel_thread(attack.name, attack_thread, index as u64, me)?;
        let (_, code) = process::wait(pid)?;
        list::cleanup();
        let ending = match process::fault_vector(code) {
            Some(vector) => Ending::Faulted(vector),
            None => Ending::Returned(ATTEMPT.lock().take().unwrap_or(Attempt::Done)),
        };
        let rules = new_rules(rampart.as_ref(), before);
        let verdict = if attack.race {
            verdict::judge_race(ending, &rules)
        } else {
            verdict::judge(attack.vmcall, ending, rampart.is_some(), &rules)
        };
        tally.add(&verdict);
        kprintln!("attack: {} | {} | {verdict}", attack.name, attack.tried);
    }
    let records = audit_count(rampart.as_ref()) - first;
    let unexpected = match tally.unexpected {
        0 => alloc::string::String::new(),
        n => alloc::format!(", {n} UNEXPECTED"),
    };
    kprintln!(
        "attacks: {} blocked, {} succeeded, {} n/a{unexpected}; audit records +{records}",
        tally.blocked,
        tally.succeeded,
        tally.not_applicable
    );
    Ok(0)
}

/// Audit records so far (0 without Rampart).
fn audit_count(rampart: Option<&Rampart>) -> u64 {
    rampart.map_or(0, |r| u64::try_from(r.audit_count()).unwrap_or(0))
}

/// The rule names of the audit records from sequence number `first` on.
fn new_rules(rampart: Option<&Rampart>, first: u64) -> Vec<&'static str> {
    let Some(rampart) = rampart else {
        return Vec::new();
    };
    let count = audit_count(Some(rampart)).saturating_sub(first) as usize;
    let mut records = vec![AuditRecord::default(); count.min(MAX_RECORDS)];
    if records.is_empty() {
        return Vec::new();
    }
    let read = usize::try_from(rampart.read_audit_log(&mut records, first)).unwrap_or(0);
    let mut names: Vec<&'static str> = records[..read.min(records.len())]
        .iter()
        .map(|r| {
            Rule::try_from(r.rule)
                .ok()
                .map_or("unknown-rule", Rule::name)
        })
        .collect();
    // Records beyond the buffer still count (as unnamed) so the verdict sees them.
    names.resize(count.max(names.len()), "unread");
    names
}
