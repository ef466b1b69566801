//! Host unit tests: `cargo test` at the workspace root, which covers the default members (the host
//! crates), and a build of the production firmware (no `gdb` feature).

use std::time::Instant;

use crate::boot_tests::report::Record;
use crate::build::cargo;

/// Runs `cargo test` with its output streamed to the terminal.
pub fn run() -> Record {
    println!("xtask: host unit tests: cargo test (workspace default members)…");
    let start = Instant::now();
    let mut record = Record::host("host-tests", "host cargo test".to_string());
    match cargo().arg("test").status() {
        Ok(status) if status.success() => {}
        Ok(status) => record
            .failures
            .push(format!("cargo test: {status} (see its output above)")),
        Err(err) => record
            .failures
            .push(format!("cannot start cargo test: {err}")),
    }
    // The production firmware (without the GDB stub) must keep building.
    if let Err(err) = crate::build::build_production() {
        record.failures.push(err.to_string());
    }
    record.seconds = start.elapsed().as_secs_f64();
    println!("{}", record.line());
    record
}
