//! The audit log: one record per blocked attempt (hypervisor/DESIGN.md invariant 8), kept in a ring
//! of the most recent [`CAPACITY`] records with a global sequence number.
#![forbid(unsafe_code)]

use rampart_hv_abi::{Access, AuditRecord, Rule};
use spin::Mutex;

/// Records kept; older ones are overwritten (their sequence numbers tell what was lost).
pub const CAPACITY: usize = 256;

/// A ring of audit records.
pub struct AuditLog {
    records: heapless::HistoryBuf<AuditRecord, CAPACITY>,
    /// Sequence number the next record gets (= records ever appended).
    next: u64,
}

impl AuditLog {
    const fn new() -> Self {
        Self {
            records: heapless::HistoryBuf::new(),
            next: 0,
        }
    }

    /// Appends a record, stamping its sequence number; returns the stamped record.
    pub fn append(&mut self, mut record: AuditRecord) -> AuditRecord {
        record.sequence = self.next;
        self.records.write(record);
        self.next += 1;
        record
    }

    /// Records ever appended.
    pub fn count(&self) -> u64 {
        self.next
    }

    /// What a reader asking for records from `first` gets: if the ring overwrote some of them,
    /// first one `RecordsDropped` record saying how many (so that a full ring never erases
    /// records quietly), then the kept records, oldest first.
    pub fn read_from(&self, first: u64) -> impl Iterator<Item = AuditRecord> + '_ {
        let oldest = self.next.saturating_sub(CAPACITY as u64);
        let gap = (first < oldest).then(|| AuditRecord {
            sequence: first,
            detail: oldest - first,
            rule: Rule::RecordsDropped as u32,
            ..AuditRecord::default()
        });
        gap.into_iter().chain(self.since(first).copied())
    }

    /// The kept records with sequence >= `first`, oldest first.
    pub fn since(&self, first: u64) -> impl Iterator<Item = &AuditRecord> {
        let kept = self.records.oldest_ordered();
        kept.filter(move |record| record.sequence >= first)
    }
}

/// The hypervisor's audit log.
pub static LOG: Mutex<AuditLog> = Mutex::new(AuditLog::new());

/// A blocked attempt, before it is stamped.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pub rule: Rule,
    pub access: Access,
    pub rip: u64,
    pub gva: u64,
    pub gpa: u64,
    pub detail: u64,
}

impl Attempt {
    pub fn record(&self, tsc: u64) -> AuditRecord {
        AuditRecord {
            tsc,
            rip: self.rip,
            gva: self.gva,
            gpa: self.gpa,
            detail: self.detail,
            access: self.access.bits(),
            rule: self.rule as u32,
            vcpu: crate::cpus::this_cpu() as u32,
            ..AuditRecord::default()
        }
    }
}

/// Records a blocked attempt and reports it on the log: `[hv] audit #N: ...`.
pub fn block(attempt: Attempt) -> AuditRecord {
    let record = append(attempt);
    log::error!(
        "audit #{}: blocked {} by rule {} at RIP={:#x} GVA={:#x} GPA={:#x} detail={:#x}",
        record.sequence,
        access_name(attempt.access),
        attempt.rule.name(),
        record.rip,
        record.gva,
        record.gpa,
        record.detail
    );
    record
}

/// Appends a record stamped with the current TSC; the caller reports it.
pub fn append(attempt: Attempt) -> AuditRecord {
    let tsc = crate::arch::instructions::rdtsc();
    LOG.lock().append(attempt.record(tsc))
}

/// Names an access for the log: `write`, `register write`, or `hypercall asking rwx`.
pub fn access_name(access: Access) -> &'static str {
    const REQUESTS: [&str; 8] = [
        "hypercall asking ---",
        "hypercall asking r--",
        "hypercall asking -w-",
        "hypercall asking rw-",
        "hypercall asking --x",
        "hypercall asking r-x",
        "hypercall asking -wx",
        "hypercall asking rwx",
    ];
    let has = |flag| access.contains(flag);
    if has(Access::HYPERCALL) {
        REQUESTS[(access & Access::RWX).bits() as usize]
    } else if has(Access::DEBUGGER) {
        "debugger write"
    } else if has(Access::REGISTER) && has(Access::READ) && !has(Access::WRITE) {
        "register read"
    } else if has(Access::REGISTER) {
        "register write"
    } else if has(Access::EXECUTE) {
        "execute"
    } else if has(Access::WRITE) {
        "write"
    } else if has(Access::READ) {
        "read"
    } else {
        "---"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(rip: u64) -> AuditRecord {
        Attempt {
            rule: Rule::KernelText,
            access: Access::WRITE,
            rip,
            gva: 0,
            gpa: 0,
            detail: 0,
        }
        .record(0)
    }

    #[test]
    fn sequence_numbers_count_every_record() {
        let mut log = AuditLog::new();
        for rip in 0..3 {
            log.append(attempt(rip));
        }
        let seqs: Vec<_> = log.since(1).map(|r| (r.sequence, r.rip)).collect();
        assert_eq!(seqs, vec![(1, 1), (2, 2)]);
        assert_eq!(log.count(), 3);
    }

    #[test]
    fn access_names_read_like_the_attempt() {
        const READ: Access = Access::READ;
        const WRITE: Access = Access::WRITE;
        const EXECUTE: Access = Access::EXECUTE;
        const REGISTER: Access = Access::REGISTER;
        const HYPERCALL: Access = Access::HYPERCALL;
        assert_eq!(access_name(WRITE), "write");
        assert_eq!(access_name(REGISTER | WRITE), "register write");
        assert_eq!(access_name(REGISTER | READ), "register read");
        assert_eq!(
            access_name(HYPERCALL | READ | WRITE | EXECUTE),
            "hypercall asking rwx"
        );
        assert_eq!(access_name(EXECUTE), "execute");
    }

    #[test]
    fn ring_keeps_the_newest_records() {
        let mut log = AuditLog::new();
        for rip in 0..(CAPACITY as u64 + 10) {
            log.append(attempt(rip));
        }
        let first = log.since(0).next().unwrap();
        assert_eq!(first.sequence, 10);
        assert_eq!(log.since(0).count(), CAPACITY);
        assert_eq!(log.since(u64::MAX).count(), 0);
        let read: Vec<_> = log.read_from(3).collect();
        assert_eq!(read.len(), CAPACITY + 1);
        assert_eq!(read[0].rule, Rule::RecordsDropped as u32);
        assert_eq!((read[0].sequence, read[0].detail), (3, 7));
        assert_eq!(read[1].sequence, 10);
        assert_eq!(log.read_from(10).next().unwrap().sequence, 10, "no gap");
    }
}
