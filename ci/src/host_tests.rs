//! Host unit tests: `cargo test` at the workspace root, which covers the default members (the host
//! crates), and a build of the production firmware (no `gdb` feature). The output is streamed as
//! it comes and read for each test binary's result (one JUnit test case per binary).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::boot_tests::report::{HostBinary, Record};
use crate::build::cargo;

/// Runs `cargo test --no-fail-fast` with its output streamed to the terminal.
pub fn run() -> Record {
    println!("xtask: host unit tests: cargo test (workspace default members)…");
    let start = Instant::now();
    let mut record = Record::host("host-tests", "host cargo test".to_string());
    match streamed_cargo_test() {
        Ok((status, output)) => {
            record.binaries = binaries(&output);
            if !status.success() {
                record
                    .failures
                    .push(format!("cargo test: {status} (see its output above)"));
            }
        }
        Err(err) => record
            .failures
            .push(format!("cannot start cargo test: {err}")),
    }
    // The CI workflow files must pass actionlint.
    let lint = crate::workflow_lint::run();
    println!("{}", lint.output.trim_end());
    if !lint.finished || lint.failed > 0 {
        record.failures.push(format!("{}: failed", lint.name));
    }
    record.binaries.push(lint);
    // The production firmware (without the GDB stub) must keep building.
    if let Err(err) = crate::build::build_production() {
        record.failures.push(err.to_string());
    }
    record.seconds = start.elapsed().as_secs_f64();
    println!("{}", record.line());
    record
}

/// Runs `cargo test` with stdout and stderr on one pipe (so "Running" lines and results keep
/// their order), echoing every line; returns the exit status and the whole output.
fn streamed_cargo_test() -> std::io::Result<(std::process::ExitStatus, String)> {
    let (reader, writer) = std::io::pipe()?;
    let mut child = cargo()
        .args(["test", "--no-fail-fast"])
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .spawn()?;
    let mut output = String::new();
    for line in BufReader::new(reader).lines() {
        let line = line.unwrap_or_else(|_| String::from("(output not UTF-8)"));
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    Ok((child.wait()?, output))
}

/// Each test binary's result, read from `cargo test`'s output: its "Running" (or "Doc-tests")
/// line, the `test NAME ... FAILED` lines and the `test result:` line.
pub fn binaries(output: &str) -> Vec<HostBinary> {
    let mut found: Vec<HostBinary> = Vec::new();
    for line in output.lines() {
        if let Some(mut name) = binary_name(line) {
            // Integration tests of different crates can share a name (`fuzz tests/fuzz/main.rs`).
            let twins = found.iter().filter(|b| b.name.starts_with(&name)).count();
            if twins > 0 {
                name = format!("{name} ({})", twins + 1);
            }
            found.push(HostBinary {
                name,
                ..HostBinary::default()
            });
            continue;
        }
        let Some(current) = found.last_mut() else {
            continue;
        };
        current.output.push_str(line);
        current.output.push('\n');
        if let Some(test) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... FAILED"))
        {
            current.failed_tests.push(test.to_string());
        }
        if let Some(counts) = line.strip_prefix("test result: ") {
            current.passed = count_before(counts, "passed");
            current.failed = count_before(counts, "failed");
            current.seconds = counts
                .rsplit("finished in ")
                .next()
                .and_then(|s| s.trim_end_matches('s').parse().ok())
                .unwrap_or(0.0);
            current.finished = true;
        }
    }
    found
}

/// `Running unittests src/lib.rs (target/debug/deps/rampart_boot_info-2e79be7d)` →
/// `rampart_boot_info src/lib.rs`; `Doc-tests rampart_loader` → `rampart_loader doc-tests`.
fn binary_name(line: &str) -> Option<String> {
    let line = line.trim_start();
    if let Some(krate) = line.strip_prefix("Doc-tests ") {
        return Some(format!("{} doc-tests", krate.trim()));
    }
    let rest = line.strip_prefix("Running ")?;
    let (source, path) = rest.rsplit_once(" (")?;
    let file = path.trim_end_matches(')').rsplit('/').next()?;
    let krate = file.rsplit_once('-').map_or(file, |(name, _hash)| name);
    let source = source.trim_start_matches("unittests ");
    Some(format!("{krate} {source}"))
}

/// The number just before `word` in `9 passed; 0 failed; ...`.
fn count_before(text: &str, word: &str) -> u32 {
    text.split(';')
        .find_map(|part| part.trim().strip_suffix(word)?.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
   Compiling xtask v0.1.0 (/work/main/ci)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.34s
     Running unittests src/lib.rs (target/debug/deps/rampart_boot_info-2e79be7d47c8143b)

running 2 tests
test tests::round_trip ... ok
test tests::magic ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/fixtures.rs (target/debug/deps/fixtures-0123456789abcdef)

running 2 tests
test fits_every_model ... FAILED
test refuses_no_ept ... ok

failures:

---- fits_every_model stdout ----
thread 'fits_every_model' panicked at tests/fixtures.rs:10:5:
no EPT

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.25s

   Doc-tests rampart_loader

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn reads_each_binary() {
        let found = binaries(OUTPUT);
        let names: Vec<&str> = found.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rampart_boot_info src/lib.rs",
                "fixtures tests/fixtures.rs",
                "rampart_loader doc-tests"
            ]
        );
        assert_eq!((found[0].passed, found[0].failed), (2, 0));
        assert_eq!((found[1].passed, found[1].failed), (1, 1));
        assert_eq!(found[1].failed_tests, ["fits_every_model"]);
        assert!(found[1].output.contains("no EPT"));
        assert_eq!(found[1].seconds, 0.25);
        assert!(found.iter().all(|b| b.finished));
    }

    #[test]
    fn a_binary_that_crashed_has_no_result() {
        let found = binaries("     Running unittests src/main.rs (target/debug/deps/xtask-00)\nerror: test failed, to rerun pass `-p xtask --bin xtask`\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "xtask src/main.rs");
        assert!(!found[0].finished);
    }
}
