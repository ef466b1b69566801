//! Which CPUs to start, and the boot line that reports them (pure).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The application processors to start, in BootInfo order: every listed APIC ID except the
/// boot CPU's and repeats, at most `max - 1` of them (index 0 is the boot CPU). An empty list
/// (a firmware that lists no CPUs) means the boot CPU alone.
pub fn application_processors(listed: &[u32], boot_apic_id: u32, max: usize) -> Vec<u32> {
    let mut aps: Vec<u32> = Vec::new();
    for &id in listed {
        if id != boot_apic_id && !aps.contains(&id) && aps.len() + 1 < max {
            aps.push(id);
        }
    }
    aps
}

/// `CPUs: N started (APIC IDs a b c)` for the CPUs that came up, boot CPU first.
pub fn started_line(started: &[u32]) -> String {
    let mut line = String::new();
    let _ = write!(line, "CPUs: {} started (APIC IDs", started.len());
    for id in started {
        let _ = write!(line, " {id}");
    }
    line.push(')');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_cpu_and_repeats_are_left_out() {
        assert_eq!(application_processors(&[0, 1, 2, 3], 0, 16), [1, 2, 3]);
        assert_eq!(application_processors(&[2, 0, 2, 1], 2, 16), [0, 1]);
        assert!(application_processors(&[], 0, 16).is_empty());
        assert!(application_processors(&[5], 5, 16).is_empty());
    }

    #[test]
    fn at_most_max_cpus_in_all() {
        let listed: Vec<u32> = (0..40).collect();
        assert_eq!(application_processors(&listed, 0, 4), [1, 2, 3]);
    }

    #[test]
    fn line_names_every_started_cpu() {
        assert_eq!(
            started_line(&[0, 1, 2, 3]),
            "CPUs: 4 started (APIC IDs 0 1 2 3)"
        );
        assert_eq!(started_line(&[7]), "CPUs: 1 started (APIC IDs 7)");
    }
}
