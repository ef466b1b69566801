//! Splitting the boot tests over runners (`--partition I/N`) and cores (`--jobs N`). Pure.
//!
//! A partition is deterministic: the selected tests, heaviest first by their expected wall time,
//! each go to the partition with the least expected time so far (ties to the lower number), so
//! the long tests (soak, the step wedge, the SMP sessions) spread over the partitions and every
//! test lands in exactly one.

use super::catalog::{BootTest, Variant};
use crate::emulator::Emulator;

/// `--partition I/N`: the I-th (1-based) of N parts, as nextest means it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

impl Partition {
    /// Parses `I/N` with 1 <= I <= N.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || format!("--partition {text}: expected I/N with 1 <= I <= N, e.g. 1/3");
        let (index, count) = text.split_once('/').ok_or_else(refuse)?;
        let index: usize = index.trim().parse().map_err(|_| refuse())?;
        let count: usize = count.trim().parse().map_err(|_| refuse())?;
        if count == 0 || index == 0 || index > count {
            return Err(refuse());
        }
        Ok(Self { index, count })
    }

    /// The tests of `tests` (in their order) that fall in this partition.
    pub fn select(&self, tests: &[&'static BootTest]) -> Vec<&'static BootTest> {
        let owner = owners(tests, self.count);
        tests
            .iter()
            .zip(owner)
            .filter(|(_, part)| *part == self.index)
            .map(|(test, _)| *test)
            .collect()
    }
}

/// The partition (1-based) of each test of `tests`, in their order, for `count` partitions.
fn owners(tests: &[&BootTest], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tests.len()).collect();
    // Heaviest first; equal weights keep catalog order (a stable sort).
    order.sort_by_key(|&i| std::cmp::Reverse(expected_seconds(tests[i])));
    let mut load = vec![0u64; count];
    let mut owner = vec![0; tests.len()];
    for i in order {
        let part = (0..count).min_by_key(|&p| load[p]).unwrap_or(0);
        load[part] += expected_seconds(tests[i]);
        owner[i] = part + 1;
    }
    owner
}

/// A test's expected wall time on this project's machines (seconds, from the suite's own
/// timings: README "Status"): only the ordering and the sums matter.
pub fn expected_seconds(test: &BootTest) -> u64 {
    match (test.variant, test.emulator) {
        (Variant::Soak, _) => 140,
        (Variant::GdbStepWedge, _) => 100,
        (Variant::Gdb | Variant::GdbKill | Variant::GdbThreads, _) => 25,
        (Variant::Normal | Variant::Production, Emulator::Bochs) if test.cpus > 1 => 80,
        (Variant::Normal | Variant::Production, Emulator::Bochs) => 50,
        (_, Emulator::Bochs) => 20,
        (Variant::Normal, _) => 16,
        _ => 5,
    }
}

/// `--jobs N`: boots at once. Each boot keeps one core busy (Bochs and QEMU TCG emulate on one
/// host thread), so the default is the machine's parallelism, never more than the tests.
pub fn jobs(requested: Option<usize>, tests: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    requested.unwrap_or(cores).clamp(1, tests.max(1))
}

/// Parses `--jobs N` (N >= 1).
pub fn parse_jobs(text: &str) -> Option<usize> {
    text.parse().ok().filter(|&n| n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_tests::catalog::BOOT_TESTS;

    fn all() -> Vec<&'static BootTest> {
        BOOT_TESTS.iter().collect()
    }

    #[test]
    fn every_test_is_in_exactly_one_partition() {
        for count in 1..=6 {
            let mut seen: Vec<&str> = Vec::new();
            for index in 1..=count {
                let part = Partition { index, count }.select(&all());
                seen.extend(part.iter().map(|t| t.name));
            }
            seen.sort_unstable();
            let mut names: Vec<&str> = BOOT_TESTS.iter().map(|t| t.name).collect();
            names.sort_unstable();
            assert_eq!(seen, names, "{count} partitions");
        }
    }

    #[test]
    fn partitions_are_deterministic_and_balanced() {
        let tests = all();
        let names = |index| {
            let part = Partition { index, count: 3 }.select(&tests);
            part.iter().map(|t| t.name).collect::<Vec<_>>()
        };
        assert_eq!(names(2), names(2));
        let sums: Vec<u64> = (1..=3)
            .map(|index| {
                let part = Partition { index, count: 3 }.select(&tests);
                part.iter().map(|t| expected_seconds(t)).sum()
            })
            .collect();
        let (min, max) = (sums.iter().min().unwrap(), sums.iter().max().unwrap());
        assert!(max - min <= 140, "{sums:?}");
        // The two longest tests land in different partitions.
        let owner = owners(&tests, 3);
        let position = |name| tests.iter().position(|t| t.name == name).unwrap();
        assert_ne!(
            owner[position("soak-bochs")],
            owner[position("gdb-step-wedge-bochs")]
        );
    }

    #[test]
    fn bad_partitions_are_refused_by_name() {
        for bad in ["0/3", "4/3", "x/3", "1/0", "3", "", "1/x", "-1/3"] {
            let error = Partition::parse(bad).unwrap_err();
            assert!(error.starts_with("--partition "), "{bad}: {error}");
        }
        assert_eq!(
            Partition::parse("2/3"),
            Ok(Partition { index: 2, count: 3 })
        );
    }

    #[test]
    fn jobs_never_exceed_the_tests() {
        assert_eq!(jobs(Some(16), 3), 3);
        assert_eq!(jobs(Some(1), 27), 1);
        assert!(jobs(None, 27) >= 1);
        assert_eq!(jobs(Some(4), 0), 1);
        assert_eq!(parse_jobs("0"), None);
        assert_eq!(parse_jobs("3"), Some(3));
    }
}
