//! The hypervisor's layering (`hypervisor/DESIGN.md` "Layering of the hypervisor"), checked on
//! its sources: every top-level module has a place in [`MODULES`], bottom first, and may name
//! only modules below it; inside `exits/`, every file has a place in [`EXIT_FILES`] and may name
//! only files below it. An import that runs upward, or a module missing from the lists, fails.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules, bottom first, by floor (see the design's table). `lib.rs`, the
/// composition root, may name all of them; `gdb_off.rs` stands in for `gdb` in production.
const MODULES: &[&[&str]] = &[
    // The hand-off contract and plain data every floor shares.
    &["handoff", "frames", "vcpu"],
    // Raw instructions; reaches the floors above only through `arch::entry_points::bind!`.
    &["arch"],
    // Pure or nearly pure: formats, rules and decisions, host-tested.
    &[
        "ept",
        "guest_paging",
        "policy",
        "vmx",
        "stats",
        "devices",
        "smm",
        "selfcheck",
    ],
    // The running hypervisor's shared state, its CPUs, console and guest-memory access.
    &[
        "state",
        "cpus",
        "audit",
        "console",
        "guest_memory",
        "stop",
        "locks",
    ],
    // Behaviour: the debugger, vCPU bring-up and start, exit handling, boot.
    &["gdb", "gdb_off", "smp", "exits", "boot"],
];

/// `exits/`'s files, bottom first: what a handler returns sits at the bottom, the dispatcher
/// (`mod.rs`) at the top.
const EXIT_FILES: &[&str] = &[
    "resume",
    "msr_bitmap",
    "cpuid",
    "xsetbv",
    "nmi",
    "debug",
    "policy",
    "cr3",
    "cr_access",
    "ipi",
    "msr",
    "io",
    "descriptor_tables",
    "page_tables",
    "hypercall",
    "mod",
];

/// Every `.rs` file under `path` (or `path` itself), sorted.
fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .flat_map(|entry| sources(&entry.unwrap().path()))
        .filter(|file| file.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The first path segment of `text` (empty for `{` or `*`).
fn segment(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The code of `line`: comments dropped.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// A module's place: its floor and its position (0 = the bottom).
fn rank(module: &str) -> Option<usize> {
    let alias = if module == "gdb_off" { "gdb" } else { module };
    MODULES
        .iter()
        .flat_map(|floor| floor.iter())
        .position(|&m| m == alias)
}

/// The top-level modules `line` names: `crate::x` and `$crate::x` (a `crate::{..}` group is
/// reported as `{`, never allowed: name each module).
fn modules_named(line: &str) -> Vec<String> {
    let code = code(line);
    code.match_indices("crate::")
        .map(|(at, _)| {
            let name = segment(&code[at + "crate::".len()..]);
            if name.is_empty() {
                "{".to_string()
            } else {
                name.to_string()
            }
        })
        .collect()
}

/// The `exits/` files `line` names: `super::x`, `crate::exits::x` (`super::super::x` leaves the
/// folder and is a top-level module).
fn exit_files_named(line: &str) -> Vec<String> {
    let code = code(line);
    let mut found = Vec::new();
    for prefix in ["super::", "crate::exits::"] {
        for (at, _) in code.match_indices(prefix) {
            if prefix == "super::" && code[..at].ends_with("super::") {
                continue;
            }
            let name = segment(&code[at + prefix.len()..]);
            if name == "super" {
                continue;
            }
            if EXIT_FILES.contains(&name) {
                found.push(name.to_string());
            } else if !name.is_empty() && prefix == "super::" {
                // An item of `exits/mod.rs` itself (`super::Resume`): the dispatcher's.
                found.push("mod".to_string());
            } else if name.is_empty() {
                found.push("{".to_string());
            }
        }
    }
    found
}

/// Upward imports between top-level modules, as `file:line: from -> to`.
fn upward_module_imports() -> Vec<String> {
    let mut report = Vec::new();
    for file in sources(&src()) {
        let relative = file.strip_prefix(src()).unwrap().to_path_buf();
        let name = relative.display().to_string();
        if name == "lib.rs" || name.ends_with("_tests.rs") || name.contains("tests/") {
            continue;
        }
        let top = relative
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        let Some(own) = rank(top) else {
            report.push(format!("{name}: module `{top}` has no place in MODULES"));
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in in_code(&text) {
            for target in modules_named(line) {
                if target == top {
                    continue;
                }
                match rank(&target) {
                    Some(theirs) if theirs < own => {}
                    _ => report.push(format!("{name}:{number}: {top} -> {target}")),
                }
            }
        }
    }
    report
}

/// Upward imports among `exits/`'s files, as `file:line: from -> to`.
fn upward_exit_imports() -> Vec<String> {
    let mut report = Vec::new();
    for file in sources(&src().join("exits")) {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
        if stem.ends_with("_tests") {
            continue;
        }
        let Some(own) = EXIT_FILES.iter().position(|&f| f == stem) else {
            report.push(format!("exits/{stem}.rs has no place in EXIT_FILES"));
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in in_code(&text) {
            for target in exit_files_named(line) {
                if stem == "mod" || target == stem {
                    continue;
                }
                match EXIT_FILES.iter().position(|&f| f == target) {
                    Some(theirs) if theirs < own => {}
                    _ => report.push(format!("exits/{stem}.rs:{number}: {stem} -> {target}")),
                }
            }
        }
    }
    report
}

/// The numbered lines of `text` outside its `#[cfg(test)] mod tests { .. }` block (tests may
/// reach anywhere) and outside doc comments.
fn in_code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let test_module = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    let end_line = text[..test_module].lines().count();
    text.lines()
        .enumerate()
        .take(end_line)
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(n, line)| (n + 1, line))
}

#[test]
fn no_import_runs_upward_between_modules() {
    let report = upward_module_imports();
    assert!(
        report.is_empty(),
        "imports that run upward (see MODULES; pass what a lower module needs in, or move it \
         down):\n{}",
        report.join("\n")
    );
}

#[test]
fn no_import_runs_upward_inside_exits() {
    let report = upward_exit_imports();
    assert!(
        report.is_empty(),
        "exits/ files that name a file above them (see EXIT_FILES):\n{}",
        report.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_place() {
    for entry in fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        if stem == "lib" || stem.ends_with("_tests") {
            continue;
        }
        assert!(rank(stem).is_some(), "{stem} has no place in MODULES");
    }
}

#[test]
fn the_checks_see_upward_imports() {
    assert_eq!(modules_named("use crate::exits::policy::block;"), ["exits"]);
    assert_eq!(
        modules_named("  handler = sym crate::smp::nmi_in_root,"),
        ["smp"]
    );
    assert_eq!(modules_named("$crate::arch::vm_entry::gprs!()"), ["arch"]);
    assert_eq!(modules_named("use crate::{smp, state};"), ["{"]);
    assert!(modules_named("let x = 1; // crate::boot").is_empty());
    assert_eq!(exit_files_named("use super::{Resume, Exception};"), ["{"]);
    assert_eq!(
        exit_files_named("super::page_tables::LOCK"),
        ["page_tables"]
    );
    assert_eq!(exit_files_named("use super::Resume;"), ["mod"]);
    assert_eq!(exit_files_named("crate::exits::cr3::apply()"), ["cr3"]);
    assert!(exit_files_named("super::super::state::get()").is_empty());
    assert!(rank("exits") > rank("arch") && rank("gdb_off") == rank("gdb"));
    assert!(rank("nowhere").is_none());
}
