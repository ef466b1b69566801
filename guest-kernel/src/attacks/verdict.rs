//! What an attack's outcome means (pure): how its kernel thread ended plus the audit records
//! the hypervisor appended meanwhile give the table's verdict.

use core::fmt;
use rampart_hv_abi::HypercallError;

/// What the attack's own code saw (when its thread was not ended by a fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The forbidden access or instruction went through.
    Done,
    /// The attack cannot apply here (the reason).
    NotApplicable(&'static str),
    /// A hypercall answered with this (negative) error.
    Refused(i64),
    /// The step went without a fault but had no effect (an interprocessor interrupt the
    /// hypervisor dropped: its audit record names the rule).
    NoEffect,
}

/// How the attack's kernel thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Returned(Attempt),
    /// An exception (vector) ended it.
    Faulted(u64),
}

/// The table's last column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Blocked, with the rule named by the hypervisor's own audit record.
    Blocked(&'static str),
    NotApplicable(&'static str),
    /// Anything else (a fault or refusal without exactly one audit record, or the reverse).
    Unexpected {
        ending: Ending,
        records: usize,
    },
}

/// `vmcall`: the attack is a hypercall (natively it can only raise #UD); `hypervisor`: Rampart
/// is present; `rules`: the rule names of the audit records appended during the attack.
pub fn judge(vmcall: bool, ending: Ending, hypervisor: bool, rules: &[&'static str]) -> Verdict {
    const INVALID_OPCODE: u64 = 6;
    const DENIED: i64 = HypercallError::Denied as i64;
    match (ending, rules) {
        (Ending::Returned(Attempt::Done), []) => Verdict::Succeeded,
        (Ending::Returned(Attempt::NotApplicable(why)), []) => Verdict::NotApplicable(why),
        (Ending::Faulted(INVALID_OPCODE), []) if vmcall && !hypervisor => {
            Verdict::NotApplicable("no hypervisor")
        }
        (
            Ending::Faulted(_)
            | Ending::Returned(Attempt::Refused(DENIED))
            | Ending::Returned(Attempt::NoEffect),
            [rule],
        ) => Verdict::Blocked(rule),
        (ending, records) => Verdict::Unexpected {
            ending,
            records: records.len(),
        },
    }
}

/// The verdict of a race row (`Attack::race`): many rounds, each lost one possibly leaving an
/// audit record. A round won is a success whatever the others left; no round won with the
/// hypervisor's records is a block, named by the grant's refusal (`unmeasured-code`) where one
/// is among them, else by the first record.
pub fn judge_race(ending: Ending, rules: &[&'static str]) -> Verdict {
    const DECIDING: &str = "unmeasured-code";
    match (ending, rules) {
        (Ending::Returned(Attempt::Done), _) => Verdict::Succeeded,
        (Ending::Returned(Attempt::NotApplicable(why)), []) => Verdict::NotApplicable(why),
        (Ending::Returned(Attempt::NoEffect), [first, ..]) => {
            Verdict::Blocked(if rules.contains(&DECIDING) {
                DECIDING
            } else {
                first
            })
        }
        (ending, records) => Verdict::Unexpected {
            ending,
            records: records.len(),
        },
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded => f.write_str("SUCCEEDED"),
            Self::Blocked(rule) => write!(f, "BLOCKED ({rule})"),
            Self::NotApplicable(why) => write!(f, "N/A ({why})"),
            Self::Unexpected { ending, records } => {
                f.write_str("UNEXPECTED (")?;
                match ending {
                    Ending::Returned(Attempt::Done) => f.write_str("went through")?,
                    Ending::Returned(Attempt::NotApplicable(why)) => write!(f, "n/a: {why}")?,
                    Ending::Returned(Attempt::Refused(error)) => write!(f, "refused: {error}")?,
                    Ending::Returned(Attempt::NoEffect) => f.write_str("no effect")?,
                    Ending::Faulted(vector) => write!(f, "fault vector {vector}")?,
                }
                write!(f, ", {records} audit records)")
            }
        }
    }
}

/// The counts of the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub blocked: u64,
    pub succeeded: u64,
    pub not_applicable: u64,
    pub unexpected: u64,
}

impl Tally {
    pub fn add(&mut self, verdict: &Verdict) {
        *match verdict {
            Verdict::Succeeded => &mut self.succeeded,
            Verdict::Blocked(_) => &mut self.blocked,
            Verdict::NotApplicable(_) => &mut self.not_applicable,
            Verdict::Unexpected { .. } => &mut self.unexpected,
        } += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let done = Ending::Returned(Attempt::Done);
        assert_eq!(judge(false, done, false, &[]), Verdict::Succeeded);
        assert_eq!(
            judge(false, Ending::Faulted(20), true, &["kernel-text"]),
            Verdict::Blocked("kernel-text")
        );
        let denied = Ending::Returned(Attempt::Refused(-4));
        assert_eq!(
            judge(true, denied, true, &["unmeasured-code"]),
            Verdict::Blocked("unmeasured-code")
        );
        assert_eq!(
            judge(true, Ending::Faulted(6), false, &[]),
            Verdict::NotApplicable("no hypervisor")
        );
        assert_eq!(
            judge(
                false,
                Ending::Returned(Attempt::NoEffect),
                true,
                &["ipi-delivery"]
            ),
            Verdict::Blocked("ipi-delivery")
        );
        assert!(matches!(
            judge(false, Ending::Returned(Attempt::NoEffect), false, &[]),
            Verdict::Unexpected { records: 0, .. }
        ));
        let na = Ending::Returned(Attempt::NotApplicable("no SMEP"));
        assert_eq!(judge(false, na, true, &[]).to_string(), "N/A (no SMEP)");
    }

    #[test]
    fn races_count_a_won_round_whatever_the_lost_ones_left() {
        let done = Ending::Returned(Attempt::Done);
        assert_eq!(
            judge_race(done, &["unmeasured-code", "w^x-no-write"]),
            Verdict::Succeeded
        );
        assert_eq!(judge_race(done, &[]), Verdict::Succeeded);
        let lost = Ending::Returned(Attempt::NoEffect);
        assert_eq!(
            judge_race(lost, &["protected-range", "unmeasured-code", "unread"]),
            Verdict::Blocked("unmeasured-code")
        );
        assert_eq!(
            judge_race(lost, &["w^x-no-write"]),
            Verdict::Blocked("w^x-no-write")
        );
        assert!(matches!(judge_race(lost, &[]), Verdict::Unexpected { .. }));
        assert!(matches!(
            judge_race(Ending::Faulted(14), &["unmeasured-code"]),
            Verdict::Unexpected { .. }
        ));
        let na = Ending::Returned(Attempt::NotApplicable("one CPU"));
        assert_eq!(judge_race(na, &[]), Verdict::NotApplicable("one CPU"));
    }

    #[test]
    fn anything_else_is_unexpected() {
        let two = judge(
            false,
            Ending::Faulted(13),
            true,
            &["pinned-cr", "pinned-cr"],
        );
        assert_eq!(
            two.to_string(),
            "UNEXPECTED (fault vector 13, 2 audit records)"
        );
        let silent = judge(false, Ending::Faulted(14), true, &[]);
        assert!(matches!(silent, Verdict::Unexpected { records: 0, .. }));
        let done_but_audited = judge(false, Ending::Returned(Attempt::Done), true, &["x"]);
        assert!(matches!(done_but_audited, Verdict::Unexpected { .. }));
        assert!(matches!(
            judge(false, Ending::Faulted(6), false, &[]),
            Verdict::Unexpected { .. }
        ));
        let mut tally = Tally::default();
        for v in [Verdict::Succeeded, Verdict::Blocked("r"), two] {
            tally.add(&v);
        }
        assert_eq!(
            (tally.blocked, tally.succeeded, tally.unexpected),
            (1, 1, 1)
        );
    }
}
