//! `cargo xtask build`: compiles the guest kernel and the UEFI firmware for their bare-metal targets.

use std::process::Command;

use crate::error::{Context, Error, Result};
use crate::paths;

/// One cross-compiled artifact: the package, the target it is built for, and extra cargo arguments.
struct Artifact {
    package: &'static str,
    target: &'static str,
    extra: &'static [&'static str],
}

const ARTIFACTS: [Artifact; 3] = [
    // With the attack suite (`run attacks` in the shell; the boot tests run it in both modes).
    Artifact {
        package: "rampart-kernel",
        target: "x86_64-unknown-none",
        extra: &["--features", "attacks"],
    },
    // The user programs for the initrd, without debug info: it would make each program ~800 KiB
    // instead of ~20 KiB, and the firmware hashes the initrd (slowly, under Bochs).
    Artifact {
        package: "rampart-user",
        target: "x86_64-unknown-none",
        extra: &[
            "--config",
            "profile.release.package.rampart-user.strip=\"debuginfo\"",
        ],
    },
    Artifact {
        package: "rampart-firmware",
        target: "x86_64-unknown-uefi",
        extra: &[],
    },
];

/// The cargo that runs us (same toolchain), or `cargo` from PATH.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(paths::repo_root());
    command
}

/// Builds every artifact in release mode and checks that the expected files exist.
pub fn build() -> Result<()> {
    println!("xtask: building…");
    for artifact in &ARTIFACTS {
        build_one(artifact)?;
    }
    let programs = crate::initrd::PROGRAMS.map(paths::user_program);
    for path in [paths::kernel_elf(), paths::firmware_efi()]
        .iter()
        .chain(&programs)
    {
        if !path.is_file() {
            return Err(Error::Setup(format!(
                "the build finished but {} is missing",
                paths::display(path)
            )));
        }
    }
    Ok(())
}

fn build_one(artifact: &Artifact) -> Result<()> {
    let mut args = vec![
        "build",
        "--package",
        artifact.package,
        "--target",
        artifact.target,
        "--release",
    ];
    args.extend(artifact.extra);
    let status = cargo()
        .args(&args)
        .status()
        .context(|| "cannot start cargo".to_string())?;
    if status.success() {
        return Ok(());
    }
    Err(Error::Command {
        what: format!("cargo {}", args.join(" ")),
        detail: format!(
            "{status}; {} does not compile yet (see the compiler output above)",
            artifact.package
        ),
    })
}

/// Builds the production firmware: the hypervisor without its `gdb` feature (no GDB stub), in
/// its own target directory so the development build stays as it is.
pub fn build_production() -> Result<()> {
    let status = cargo()
        .args([
            "build",
            "--package",
            "rampart-firmware",
            "--target",
            "x86_64-unknown-uefi",
            "--release",
            "--no-default-features",
            "--target-dir",
        ])
        .arg(paths::production_target_dir())
        .status()
        .context(|| "cannot start cargo".to_string())?;
    if !status.success() {
        return Err(Error::Command {
            what: "the production firmware build (no gdb feature)".to_string(),
            detail: status.to_string(),
        });
    }
    Ok(())
}
