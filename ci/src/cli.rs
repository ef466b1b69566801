//! The command line, declared with `clap`'s derive: each command's flags, their values and their
//! help text in one place. `cargo xtask <command> --help` prints that command's flags; the
//! README's flag table says the same (checked by `readme_names_every_flag`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::boot_tests::partition::Partition;
use crate::emulator::{self, Emulator};
use crate::image::Mode;

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Builds Rampart, writes its UEFI disk image, boots it under Bochs or QEMU and runs the tests (see README.md).",
    after_help = "Exit codes: 0 pass, 1 fail, 2 timeout, 3 emulator exited, 4 could not run (usage, setup, build).",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build the guest kernel, the user programs and the UEFI firmware (release).
    Build,
    /// Build, then write the disk image; its path is the last line of stdout.
    Image(ImageArgs),
    /// Build, image and boot with this terminal attached to the guest console (COM1).
    ///
    /// In a terminal, keys go to the guest as typed (raw mode): Ctrl-A x quits, Ctrl-A h helps.
    /// Exit code: 0 PASS or Ctrl-A x, 1 FAIL, 2 timeout, 3 emulator exited, 4 could not run,
    /// 128+N stopped by signal N.
    Run(RunArgs),
    /// Host unit tests, then the boot tests; writes target/rampart/junit.xml and test-results.json.
    Test(TestArgs),
    /// Boot native and hv side by side under Bochs, run the guest's benchmarks, print the table.
    ///
    /// Writes target/rampart/bench/bench.md and bench.json.
    Bench(BenchArgs),
    /// One hv boot under Bochs repeating spawn/exit, the exit fuzzer and the attack suite.
    Soak(SoakArgs),
    /// Boot an image with the GDB stub on under Bochs (COM1 shown here) and start gdb on the kernel.
    Gdb(GdbArgs),
    /// Internal: the child of `gdb` that boots the image and relays COM2 to a TCP port.
    #[command(hide = true)]
    GdbServe(GdbServeArgs),
}

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Run the guest kernel under the hypervisor (hv) or on its own (native).
    #[arg(long, value_name = "hv|native", default_value = "hv", value_parser = mode)]
    pub mode: Mode,
    /// Where to write the image (default: target/rampart/rampart-<mode>.img).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Use the firmware built without the GDB stub.
    #[arg(long)]
    pub production: bool,
    /// Write a GPT disk whose EFI System Partition holds the FAT volume (for a USB stick).
    #[arg(long)]
    pub gpt: bool,
    /// Put this firmware on the image without building (with --kernel).
    #[arg(
        long,
        value_name = "EFI",
        requires = "kernel",
        conflicts_with = "production"
    )]
    pub firmware: Option<PathBuf>,
    /// Put this kernel on the image without building (with --firmware).
    #[arg(
        long,
        value_name = "ELF",
        requires = "firmware",
        conflicts_with = "production"
    )]
    pub kernel: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// auto picks KVM when the host has usable VT-x, else Bochs (hv) or QEMU TCG (native).
    #[arg(long, value_name = "auto|bochs|qemu|kvm", default_value = "auto", value_parser = emulator_choice)]
    pub emulator: EmulatorChoice,
    /// Run the guest kernel under the hypervisor (hv) or on its own (native).
    #[arg(long, value_name = "hv|native", default_value = "hv", value_parser = mode)]
    pub mode: Mode,
    /// The Bochs CPU model (ignored by QEMU).
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_BOCHS_CPU)]
    pub cpu: String,
    /// Processors of the machine, 1 to 16.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = cpus)]
    pub cpus: u32,
    /// Time limit in seconds (default: 600 under Bochs, 120 under QEMU).
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Boot this image (for example a failed test's disk.img) without building.
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Only these boot tests (comma-separated names; see --list).
    #[arg(long, value_name = "a,b")]
    pub only: Option<String>,
    /// Skip the host unit tests.
    #[arg(long)]
    pub skip_host: bool,
    /// Boot the artifacts already in target/ without building.
    #[arg(long)]
    pub no_build: bool,
    /// List the selected boot tests and exit.
    #[arg(long)]
    pub list: bool,
    /// Time limit per boot test in seconds (default: the emulator's).
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Boot N tests at a time (default: the machine's available parallelism).
    #[arg(long, value_name = "N", value_parser = jobs)]
    pub jobs: Option<usize>,
    /// Run only the I-th of N parts of the selection (1-based, deterministic, long tests spread).
    #[arg(long, value_name = "I/N", value_parser = Partition::parse)]
    pub partition: Option<Partition>,
    /// Boot the selected hv tests under QEMU/KVM instead of Bochs (a host with nested VT-x).
    #[arg(long, value_name = "kvm", value_parser = kvm_only)]
    pub emulator: Option<Emulator>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The Bochs CPU model of both boots.
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_BOCHS_CPU)]
    pub cpu: String,
    /// Processors of the SMP boots (1 skips them).
    #[arg(long, value_name = "N", default_value_t = crate::bench::DEFAULT_SMP_CPUS, value_parser = cpus)]
    pub cpus: u32,
    /// Time limit per boot in seconds (default: 600).
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug)]
pub struct SoakArgs {
    /// How long to soak.
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub minutes: u64,
    /// The Bochs CPU model.
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_BOCHS_CPU)]
    pub cpu: String,
}

#[derive(Args, Debug)]
pub struct GdbArgs {
    /// The Bochs CPU model.
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_BOCHS_CPU)]
    pub cpu: String,
}

#[derive(Args, Debug)]
pub struct GdbServeArgs {
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_BOCHS_CPU)]
    pub cpu: String,
    #[arg(long, value_name = "PORT")]
    pub port: u16,
}

/// The Bochs model the commands boot unless told otherwise.
pub const DEFAULT_BOCHS_CPU: &str = "tigerlake";

fn mode(text: &str) -> Result<Mode, String> {
    Mode::parse(text).ok_or_else(|| "expected hv or native".to_string())
}

/// `--emulator`: one emulator, or none for `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatorChoice(pub Option<Emulator>);

fn emulator_choice(text: &str) -> Result<EmulatorChoice, String> {
    emulator::parse_choice(text)
        .map(EmulatorChoice)
        .ok_or_else(|| "expected auto, bochs, qemu or kvm".to_string())
}

fn kvm_only(text: &str) -> Result<Emulator, String> {
    match text {
        "kvm" => Ok(Emulator::Kvm),
        _ => Err("expected kvm (the only emulator the hv boot tests can move to)".to_string()),
    }
}

/// A processor count (the kernel uses at most 16).
fn cpus(text: &str) -> Result<u32, String> {
    text.parse()
        .ok()
        .filter(|n| (1..=16).contains(n))
        .ok_or_else(|| "expected a processor count from 1 to 16".to_string())
}

fn jobs(text: &str) -> Result<usize, String> {
    crate::boot_tests::partition::parse_jobs(text)
        .ok_or_else(|| "expected a number of boots, 1 or more".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(line.split_whitespace()))
    }

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_take_values_in_both_spellings() {
        let Command::Image(image) = parse("image --mode native --out=/tmp/x.img")
            .unwrap()
            .command
        else {
            panic!("not image");
        };
        assert_eq!(image.mode, Mode::Native);
        assert_eq!(image.out, Some(PathBuf::from("/tmp/x.img")));
    }

    #[test]
    fn bad_values_and_flags_are_refused_by_name() {
        for (line, named) in [
            ("test --partition 0/3", "--partition"),
            ("test --partition 4/3", "--partition"),
            ("test --partition x/3", "--partition"),
            ("test --partition 1/0", "--partition"),
            ("test --jobs 0", "--jobs"),
            ("run --cpus 17", "--cpus"),
            ("run --mode turbo", "--mode"),
            ("run --emulator vbox", "--emulator"),
            ("test --timeout soon", "--timeout"),
            ("test --bogus", "--bogus"),
            ("soak --minutes 0", "--minutes"),
            ("image --firmware a.efi", "--kernel"),
            ("test --emulator qemu", "--emulator"),
        ] {
            let error = parse(line).unwrap_err().to_string();
            assert!(error.contains(named), "{line}: {error}");
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let Command::Run(run) = parse("run").unwrap().command else {
            panic!("not run");
        };
        assert_eq!(
            (run.emulator, run.mode, run.cpus),
            (EmulatorChoice(None), Mode::Hv, 2)
        );
        assert_eq!(run.cpu, "tigerlake");
        let Command::Test(test) = parse("test --partition 2/3 --jobs 4").unwrap().command else {
            panic!("not test");
        };
        assert_eq!(test.partition, Some(Partition { index: 2, count: 3 }));
        assert_eq!(test.jobs, Some(4));
    }

    #[test]
    fn every_command_has_help() {
        for name in ["build", "image", "run", "test", "bench", "soak", "gdb"] {
            let error = parse(&format!("{name} --help")).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp, "{name}");
            assert!(error.to_string().contains("Usage: cargo xtask"), "{name}");
        }
    }

    /// The README's table row for each command names exactly the flags the parser takes.
    #[test]
    fn readme_names_every_flag() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Other commands and flags")
            .nth(1)
            .and_then(|rest| rest.split("\n#").next())
            .expect("README has the flag table");
        for command in Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            let name = command.get_name();
            let row = table
                .lines()
                .find(|line| line.starts_with(&format!("| `cargo xtask {name}")))
                .unwrap_or_else(|| panic!("README has no row for `cargo xtask {name}`"));
            let row = row.replace("\\|", "/");
            let synopsis = row.split('|').nth(1).unwrap_or("");
            let mut declared: Vec<String> = command
                .get_arguments()
                .filter_map(|arg| arg.get_long())
                .filter(|long| *long != "help")
                .map(|long| format!("--{long}"))
                .collect();
            declared.sort();
            let mut written: Vec<String> = synopsis
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|word| word.starts_with("--") && word.len() > 2)
                .map(str::to_string)
                .collect();
            written.sort();
            written.dedup();
            assert_eq!(written, declared, "README row for `cargo xtask {name}`");
        }
    }
}
