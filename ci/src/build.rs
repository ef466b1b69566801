//! `cargo xtask build`: compiles the guest kernel and the UEFI firmware for their bare-metal targets.

use std::process::Command;

use crate::error::{Context, Error, Result};
use crate::paths;

/// One cross-compiled artifact: the package and the target it is built for.
struct Artifact {
    package: &'static str,
    target: &'static str,
}

const ARTIFACTS: [Artifact; 2] = [
    Artifact {
        package: "rampart-kernel",
        target: "x86_64-unknown-none",
    },
    Artifact {
        package: "rampart-firmware",
        target: "x86_64-unknown-uefi",
    },
];

/// The cargo that runs us (same toolchain), or `cargo` from PATH.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(paths::repo_root());
    command
}

/// Builds both artifacts in release mode and checks that the expected files exist.
pub fn build() -> Result<()> {
    println!("xtask: building…");
    for artifact in &ARTIFACTS {
        build_one(artifact)?;
    }
    for path in [paths::kernel_elf(), paths::firmware_efi()] {
        if !path.is_file() {
            return Err(Error::Setup(format!(
                "the build finished but {} is missing",
                paths::display(&path)
            )));
        }
    }
    Ok(())
}

fn build_one(artifact: &Artifact) -> Result<()> {
    let args = [
        "build",
        "--package",
        artifact.package,
        "--target",
        artifact.target,
        "--release",
    ];
    let status = cargo()
        .args(args)
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
