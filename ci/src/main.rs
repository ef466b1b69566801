//! `cargo xtask`: builds Rampart, writes its UEFI disk image, boots it under Bochs or QEMU and runs the
//! tests. See README.md.

#![forbid(unsafe_code)]

mod bench;
mod boot_tests;
mod build;
mod cli;
mod commands;
mod emulator;
mod error;
mod gdb;
mod gpt;
mod host_tests;
mod image;
mod initrd;
mod lock;
mod paths;
mod serial;
mod setup;
mod soak;
mod terminal;
mod workflow_lint;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::Result;

/// Exit code when a command could not do its job (bad arguments, missing tools, build errors).
const EXIT_ERROR: u8 = 4;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help`, `help` and no command at all print the help and succeed; a bad flag or
            // value is refused by name with EXIT_ERROR, as before the parser was clap's.
            use clap::error::ErrorKind::*;
            let _ = err.print();
            let code = match err.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => EXIT_ERROR,
            };
            return ExitCode::from(code);
        }
    };
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(command: Command) -> Result<u8> {
    // `gdb-serve` runs as a child of `gdb`, which already holds the lock.
    let _lock = match command {
        Command::GdbServe(_) => None,
        _ => Some(lock::acquire()?),
    };
    match command {
        Command::Build => commands::build(),
        Command::Image(args) => commands::image(args),
        Command::Run(args) => commands::run(args),
        Command::Test(args) => commands::test(args),
        Command::Gdb(args) => gdb::command(args),
        Command::GdbServe(args) => gdb::serve(args),
        Command::Bench(args) => commands::bench(args),
        Command::Soak(args) => commands::soak(args),
    }
}
