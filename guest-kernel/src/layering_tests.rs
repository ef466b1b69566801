//! The guest kernel's layering, checked on its sources (see `arch/mod.rs`): `arch` imports only
//! itself and the pure modules below it, and those import only each other.

use std::fs;
use std::path::{Path, PathBuf};

/// The modules `arch` may name: itself and the pure layer below it.
const ARCH_MAY_USE: &[&str] = &["arch", "mm", "trap"];
/// The modules the pure layer may name.
const BELOW_ARCH_MAY_USE: &[&str] = &["mm", "trap"];

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

/// The first path segment of `text` (empty for `{` or `*`).
fn segment(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The kernel's top-level modules: `src/`'s files and folders.
fn top_level_modules() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    fs::read_dir(src)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_string()))
        .collect()
}

/// The paths in `line` (comments skipped) that leave `allowed`: `crate::` paths whose first
/// segment is not in it (a `crate::{...}` group always), and `super::super::` paths to a
/// top-level module not in it (`super::super` inside a folder's test module stays in the
/// folder).
fn violations(line: &str, allowed: &[&str]) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let top = top_level_modules();
    let mut found = Vec::new();
    for (prefix, only_top_level) in [("crate::", false), ("super::super::", true)] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let name = segment(rest);
            let leaves = !allowed.contains(&name)
                && (!only_top_level || top.iter().any(|module| module == name));
            if leaves {
                let shown = if name.is_empty() { rest } else { name };
                found.push(format!("{prefix}{shown}"));
            }
        }
    }
    found
}

/// Every violation in the files under `paths` (relative to `src/`), as `file:line: path`.
fn check(paths: &[&str], allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut report = Vec::new();
    for file in paths.iter().flat_map(|path| sources(&src.join(path))) {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for path in violations(line, allowed) {
                let name = file.strip_prefix(&src).unwrap().display();
                report.push(format!("{name}:{}: {path}", number + 1));
            }
        }
    }
    report
}

#[test]
fn arch_imports_nothing_above_it() {
    let report = check(&["arch"], ARCH_MAY_USE);
    assert!(
        report.is_empty(),
        "arch/ names modules above it (pass what it needs in: arch::kernel, arch::log):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_pure_layer_imports_nothing_above_it() {
    let report = check(&["mm", "trap.rs"], BELOW_ARCH_MAY_USE);
    assert!(
        report.is_empty(),
        "mm/ or trap.rs names modules above them:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_sees_upward_imports() {
    for line in [
        "use crate::boot::start;",
        "    dispatch = sym crate::syscall::dispatch,",
        "use crate::{mm, process};",
        "crate::console::kprintln!(\"x\");",
        "use super::super::hv;",
        "$crate::process::user_fault(frame, cr2)",
    ] {
        assert!(!violations(line, ARCH_MAY_USE).is_empty(), "{line}");
    }
    for line in [
        "use crate::mm::layout;",
        "use crate::trap::InterruptFrame;",
        "//! mentions `crate::attacks`",
        "let x = 1; // crate::process",
        "let virt = super::super::layout::USER_TOP;",
    ] {
        assert!(violations(line, ARCH_MAY_USE).is_empty(), "{line}");
    }
}
