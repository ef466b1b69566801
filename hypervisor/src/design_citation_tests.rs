//! Every citation of the design in the repository resolves: it names the file by its path
//! (`hypervisor/DESIGN.md`), a quoted section is one of its headings, and a cited invariant is
//! one of its numbered invariants.

use std::fs;
use std::path::{Path, PathBuf};

const DESIGN: &str = include_str!("../DESIGN.md");
/// Where citations live, from the repository root.
const CITING: &[&str] = &[
    "README.md",
    "hypervisor",
    "guest-kernel",
    "guest-user",
    "firmware",
    "ci",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` and `.md` file under `path`, `target/` and the design itself left out.
fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let path = entry.unwrap().path();
        let this_test = path.ends_with("design_citation_tests.rs");
        if path.ends_with("target") || path.ends_with("DESIGN.md") || this_test {
            continue;
        }
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path
            .extension()
            .is_some_and(|ext| ext == "rs" || ext == "md")
        {
            files.push(path);
        }
    }
    files
}

/// The design's `## ` headings.
fn sections() -> Vec<&'static str> {
    DESIGN
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .collect()
}

/// How many numbered invariants the design lists.
fn invariants() -> u32 {
    let start = DESIGN.find("## Threat model and invariants").unwrap();
    let section = &DESIGN[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    section[..end]
        .lines()
        .filter_map(|line| line.split_once(". ")?.0.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

/// The invariant numbers at the start of `text` ("3", "1-4", "1-4 and 7", "5-7").
fn numbers(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let words = text
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', ')', ';', ':', '.']));
    for word in words {
        if word == "and" {
            continue;
        }
        let range = match word.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (word.parse(), word.parse()),
        };
        let (Ok(first), Ok(last)) = range else { break };
        found.extend(first..=last);
    }
    found
}

/// What is wrong with the citation at byte `at` of `text` (where "DESIGN.md" starts).
fn problems(text: &str, at: usize) -> Vec<String> {
    let mut found = Vec::new();
    if !text[..at].ends_with("hypervisor/") {
        found.push("not written as `hypervisor/DESIGN.md`".to_string());
    }
    let after = text[at + "DESIGN.md".len()..]
        .trim_start_matches('`')
        .trim_start();
    if let Some(quoted) = after.strip_prefix('"') {
        // A section name may wrap onto the next comment line.
        let raw = quoted.split('"').next().unwrap_or("");
        let section = raw
            .split_whitespace()
            .filter(|word| !["//!", "///", "//"].contains(word))
            .collect::<Vec<_>>()
            .join(" ");
        if !sections().contains(&section.as_str()) {
            found.push(format!("no section \"{section}\""));
        }
    }
    let before = text[..at]
        .trim_end_matches("hypervisor/")
        .trim_end_matches('`');
    let cited = if let Some(rest) = after.strip_prefix("invariants ") {
        numbers(rest)
    } else if let Some(rest) = after.strip_prefix("invariant ") {
        numbers(rest)
    } else if let Some(head) = before.strip_suffix(" of ") {
        let number = head.rsplit(' ').next().unwrap_or("");
        numbers(number)
    } else {
        Vec::new()
    };
    for n in cited {
        if n == 0 || n > invariants() {
            found.push(format!("no invariant {n}"));
        }
    }
    found
}

#[test]
fn every_design_citation_resolves() {
    let mut report = Vec::new();
    let mut seen = 0;
    for root in CITING {
        for file in sources(&repository().join(root)) {
            let text = fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("DESIGN.md") {
                seen += 1;
                for problem in problems(&text, at) {
                    let line = text[..at].lines().count();
                    report.push(format!("{}:{line}: {problem}", file.display()));
                }
            }
        }
    }
    assert!(
        seen >= 20,
        "only {seen} citations found: is the walk right?"
    );
    assert!(
        report.is_empty(),
        "citations of the design that do not resolve:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_sees_bad_citations() {
    assert_eq!(invariants(), 9);
    let good = [
        "(hypervisor/DESIGN.md invariant 9)",
        "(hypervisor/DESIGN.md invariants 1-4 and 7).",
        "`hypervisor/DESIGN.md` \"Layering of the hypervisor\"",
        "(hypervisor/DESIGN.md \"Devices and interrupts\")",
        "Invariant 4 of hypervisor/DESIGN.md: whatever",
    ];
    for text in good {
        let at = text.find("DESIGN.md").unwrap();
        assert!(
            problems(text, at).is_empty(),
            "{text}: {:?}",
            problems(text, at)
        );
    }
    let bad = [
        "(DESIGN.md invariant 9)",
        "(hypervisor/DESIGN.md invariant 10)",
        "(hypervisor/DESIGN.md invariants 8-11)",
        "(hypervisor/DESIGN.md \"Devices\")",
        "Invariant 12 of hypervisor/DESIGN.md",
    ];
    for text in bad {
        let at = text.find("DESIGN.md").unwrap();
        assert!(!problems(text, at).is_empty(), "{text}");
    }
}
