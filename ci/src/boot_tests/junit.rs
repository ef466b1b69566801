//! `junit.xml`, the report CI dashboards read: a suite `host` with one test case per host test
//! binary (and the production firmware build), a suite `boot` with one per boot test, each
//! failure with its text and the serial tail. Written with `quick-junit`, which escapes.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::report::{write_file, HostBinary, Record};
use crate::error::{Error, Result};

/// The name of the host tests' record (see `crate::host_tests`).
const HOST_RECORD: &str = "host-tests";

/// Writes the report of `records` to `path`.
pub fn write(path: &Path, records: &[Record]) -> Result<()> {
    let xml = report(records)
        .to_string()
        .map_err(|err| Error::Image(format!("cannot write the JUnit report: {err}")))?;
    write_file(path, xml)
}

/// The JUnit report of `records`.
pub fn report(records: &[Record]) -> Report {
    let mut host = TestSuite::new("host");
    let mut boot = TestSuite::new("boot");
    for record in records {
        if record.name == HOST_RECORD {
            host.add_test_cases(host_cases(record));
        } else {
            boot.add_test_case(boot_case(record));
        }
    }
    let mut report = Report::new("rampart");
    for suite in [host, boot] {
        if !suite.test_cases.is_empty() {
            report.add_test_suite(suite);
        }
    }
    report
}

/// One case per test binary, and one for what the record says beyond them (the production
/// firmware build, a `cargo test` that did not start or did not build).
fn host_cases(record: &Record) -> Vec<TestCase> {
    let mut cases: Vec<TestCase> = record.binaries.iter().map(binary_case).collect();
    let unexplained: Vec<&String> = record
        .failures
        .iter()
        .filter(|failure| {
            let explained = failure.starts_with("cargo test: ")
                || record.binaries.iter().any(|b| failure.starts_with(&b.name));
            !explained || record.binaries.is_empty()
        })
        .collect();
    let status = match unexplained.first() {
        None => TestCaseStatus::success(),
        Some(first) => {
            let text: Vec<&str> = unexplained.iter().map(|f| f.as_str()).collect();
            failure(first, &text.join("\n"))
        }
    };
    let mut build = TestCase::new("cargo test build and production firmware build", status);
    build.set_classname("host");
    cases.push(build);
    cases
}

fn binary_case(binary: &HostBinary) -> TestCase {
    let status = if !binary.finished {
        failure(
            "the test binary ended without a result line",
            &binary.output,
        )
    } else if binary.failed > 0 {
        let message = format!(
            "{} failed: {}",
            binary.failed,
            binary.failed_tests.join(", ")
        );
        failure(&message, &binary.output)
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(binary.name.as_str(), status);
    case.set_classname("host")
        .set_time(Duration::from_secs_f64(binary.seconds.max(0.0)));
    if binary.finished {
        case.set_assertions((binary.passed + binary.failed) as usize);
    }
    case
}

fn boot_case(record: &Record) -> TestCase {
    let status = match record.failures.first() {
        None => TestCaseStatus::success(),
        Some(first) => failure(first, &record.failures.join("\n")),
    };
    let mut case = TestCase::new(record.name.as_str(), status);
    case.set_classname(format!("boot.{}", record.platform.replace(' ', "-")))
        .set_time(Duration::from_secs_f64(record.seconds.max(0.0)));
    for (name, value) in &record.figures {
        case.add_property((name.as_str(), value.to_string().as_str()));
    }
    if !record.evidence.is_empty() {
        case.set_system_out(record.evidence.trim_start());
    }
    case
}

fn failure(message: &str, description: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message).set_description(description);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(name: &str, failures: &[&str]) -> Record {
        let mut record = Record::host(name, "bochs tigerlake".into());
        record.failures = failures.iter().map(|f| f.to_string()).collect();
        record.figures = vec![("exits.total".into(), 42)];
        record.seconds = 12.5;
        if !failures.is_empty() {
            record.evidence = "\n    | [hv] FATAL: <&> \u{1b}[0m".into();
        }
        record
    }

    fn host() -> Record {
        let mut record = Record::host(HOST_RECORD, "host cargo test".into());
        record.binaries = crate::host_tests::binaries(
            "     Running unittests src/lib.rs (target/debug/deps/rampart_loader-00)\n\
             test a ... FAILED\n\
             test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.50s\n",
        );
        record.failures = vec!["cargo test: exit status: 101 (see its output above)".into()];
        record
    }

    #[test]
    fn every_record_is_a_case_and_parses_back() {
        let records = [
            host(),
            boot("hv-bochs-tigerlake", &[]),
            boot("attacks", &["missing line `[attack] \"x\" <blocked>`"]),
        ];
        let dir = std::env::temp_dir().join(format!("rampart-junit-{}", std::process::id()));
        let path = dir.join("junit.xml");
        write(&path, &records).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.tests, 4);
        assert_eq!(back.failures, 2);
        let host = &back.test_suites[0];
        assert_eq!(host.name.as_str(), "host");
        assert_eq!(
            host.test_cases[0].name.as_str(),
            "rampart_loader src/lib.rs"
        );
        assert!(matches!(
            &host.test_cases[0].status,
            TestCaseStatus::NonSuccess { message: Some(m), .. } if m.as_str() == "1 failed: a"
        ));
        assert!(matches!(
            host.test_cases[1].status,
            TestCaseStatus::Success { .. }
        ));
        let boot = &back.test_suites[1];
        assert_eq!(boot.test_cases.len(), 2);
        let attacks = &boot.test_cases[1];
        assert!(matches!(
            &attacks.status,
            TestCaseStatus::NonSuccess { message: Some(m), .. }
                if m.as_str() == "missing line `[attack] \"x\" <blocked>`"
        ));
        let out = attacks.system_out.as_ref().unwrap();
        assert!(out.as_str().contains("[hv] FATAL: <&>"), "{out:?}");
        assert_eq!(attacks.time, Some(Duration::from_secs_f64(12.5)));
    }

    #[test]
    fn a_host_run_that_did_not_start_is_a_failed_case() {
        let mut record = Record::host(HOST_RECORD, "host cargo test".into());
        record.failures = vec!["cannot start cargo test: not found".into()];
        let report = report(&[record]);
        assert_eq!(report.failures, 1);
    }
}
