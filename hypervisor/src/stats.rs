//! VM-exit counters by basic exit reason: the performance dashboard.
#![forbid(unsafe_code)]

use crate::vmx::exit_reason::{self, EXIT_REASON_COUNT};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Counters for each basic exit reason (one vCPU, but atomics keep it `Sync` without locks).
pub struct ExitStats {
    counts: [AtomicU64; EXIT_REASON_COUNT],
    /// Exits that only read these counters (ExitCount hypercalls), left out of the answers
    /// to them so that a measurement does not count itself.
    queries: AtomicU64,
    /// TSC cycles spent in exit handlers.
    cycles: AtomicU64,
}

impl ExitStats {
    pub(crate) const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; EXIT_REASON_COUNT],
            queries: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
        }
    }

    /// Counts one exit; reasons beyond Appendix C's table are counted in the last slot.
    pub fn record(&self, basic_reason: u16) {
        let slot = usize::from(basic_reason).min(EXIT_REASON_COUNT - 1);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self, basic_reason: u16) -> u64 {
        self.counts
            .get(usize::from(basic_reason))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Adds the cycles one exit handler took.
    pub fn add_cycles(&self, cycles: u64) {
        self.cycles.fetch_add(cycles, Ordering::Relaxed);
    }

    /// TSC cycles spent in exit handlers so far.
    pub fn cycles(&self) -> u64 {
        self.cycles.load(Ordering::Relaxed)
    }

    /// Marks the exit being handled as a counter query (an ExitCount hypercall).
    pub fn record_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Exits of `basic_reason` (or of all reasons if `None`) that were not counter queries.
    pub fn count_excluding_queries(&self, basic_reason: Option<u16>, vmcall_reason: u16) -> u64 {
        let queries = self.queries.load(Ordering::Relaxed);
        match basic_reason {
            None => self.total() - queries,
            Some(r) if r == vmcall_reason => self.count(r) - queries,
            Some(r) => self.count(r),
        }
    }
}

/// `total=N NAME=count ...` for every reason that occurred, in Appendix C order.
impl fmt::Display for ExitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "total={}", self.total())?;
        for reason in 0..EXIT_REASON_COUNT as u16 {
            let n = self.count(reason);
            if n != 0 {
                write!(f, " {}={n}", exit_reason::name(reason))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_only_reasons_seen() {
        let stats = ExitStats::new();
        stats.record(10);
        stats.record(10);
        stats.record(18);
        assert_eq!(stats.to_string(), "total=3 CPUID=2 VMCALL=1");
    }

    #[test]
    fn queries_do_not_count_themselves() {
        let stats = ExitStats::new();
        stats.record(10);
        stats.record(18);
        stats.record_query();
        assert_eq!(stats.count_excluding_queries(None, 18), 1);
        stats.record(18);
        stats.record_query();
        assert_eq!(stats.count_excluding_queries(None, 18), 1);
        assert_eq!(stats.count_excluding_queries(Some(18), 18), 0);
        assert_eq!(stats.count_excluding_queries(Some(10), 18), 1);
    }

    #[test]
    fn out_of_table_reasons_are_counted_not_dropped() {
        let stats = ExitStats::new();
        stats.record(u16::MAX);
        assert_eq!(stats.total(), 1);
    }
}
