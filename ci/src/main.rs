//! `cargo xtask`: builds Rampart, writes its UEFI disk image, boots it under Bochs or QEMU and runs the
//! tests. See README.md.

#![forbid(unsafe_code)]

mod args;
mod bench;
mod boot_tests;
mod build;
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

use std::process::ExitCode;

use args::Args;
use error::{Error, Result};

/// Exit code when a command could not do its job (bad arguments, missing tools, build errors).
const EXIT_ERROR: u8 = 4;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build                              build the guest kernel, the user programs and the UEFI
                                     firmware (release)
  image [--mode hv|native] [--out PATH] [--production] [--gpt] [--firmware EFI --kernel ELF]
                                     build, then write the FAT disk image (path on the last line);
                                     with --firmware and --kernel, use those files and skip the build;
                                     --production: firmware without the GDB stub; --gpt: a GPT disk
                                     whose EFI System Partition holds the FAT volume (for a USB
                                     stick: the dd command is printed)
  run [--emulator auto|bochs|qemu|kvm] [--mode hv|native] [--cpu MODEL] [--cpus N] [--timeout S]
      [--image PATH]                 build, image and boot with the serial console live
                                     (--cpus: processors, default 2; --image: boot that image,
                                     no build); in a terminal keys go to the guest as typed
                                     (raw mode): Ctrl-A x quits, Ctrl-A h helps;
                                     exit 0 PASS, 1 FAIL, 2 timeout, 3 emulator exited, 4 error
  test [--only a,b] [--skip-host] [--no-build] [--list] [--timeout S] [--jobs N]
       [--partition I/N]             host unit tests, then the boot tests, N at a time (default:
                                     the machine's parallelism); --partition: only the I-th of N
                                     parts (deterministic, long tests spread; with --list too);
                                     --no-build: boot the artifacts already in target/
  bench [--cpu MODEL] [--cpus N] [--timeout S]
                                     boot native and hv under Bochs (default cpu tigerlake) on 1
                                     and on N (2) processors, run the guest's `bench` (`bench smp`
                                     on N) in each and print the comparison; writes
                                     target/rampart/bench/bench.md and bench.json
  gdb [--cpu MODEL]                  build an image with the GDB stub on, boot it under Bochs
                                     (COM1 shown here) and start gdb on the kernel, connected
  help                               this text";

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_else(|| "help".to_string());
    let args = Args::new(argv.collect());
    match dispatch(&command, args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(command: &str, args: Args) -> Result<u8> {
    // `gdb-serve` runs as a child of `gdb`, which already holds the lock.
    let _lock = match command {
        "build" | "image" | "run" | "test" | "gdb" | "bench" | "soak" => Some(lock::acquire()?),
        _ => None,
    };
    match command {
        "build" => commands::build(args),
        "image" => commands::image(args),
        "run" => commands::run(args),
        "test" => commands::test(args),
        "gdb" => gdb::command(args),
        "gdb-serve" => gdb::serve(args),
        "bench" => commands::bench(args),
        "soak" => commands::soak(args),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(Error::Usage(format!("unknown command `{other}`"))),
    }
}
