//! Fresh-machine checks run before build/run/test: the Rust targets and the Debian packages the chosen
//! command needs. As root (or with passwordless sudo, as on a hosted CI runner) the runner installs
//! what is missing; otherwise it prints the command to run.

use std::path::Path;
use std::process::Command;

use crate::emulator::{bochs::VGABIOS_PATH, OVMF_PATH};
use crate::error::{Context, Error, Result};
use crate::paths;

/// What a command is about to use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Bochs,
    Qemu,
    Gdb,
}

/// A Debian package and how to tell it is installed.
struct Package {
    name: &'static str,
    probe: Probe,
    /// Installed along with it: `bochs-term` satisfies Bochs's `bochs-gui` dependency without wxWidgets.
    with: &'static [&'static str],
}

enum Probe {
    Binary(&'static str),
    File(&'static str),
}

const RUST_TARGETS: [&str; 2] = ["x86_64-unknown-uefi", "x86_64-unknown-none"];

const OVMF: Package = Package {
    name: "ovmf",
    probe: Probe::File(OVMF_PATH),
    with: &[],
};
const BOCHS: [Package; 4] = [
    Package {
        name: "bochs",
        probe: Probe::Binary("bochs"),
        with: &["bochs-term"],
    },
    Package {
        name: "bochsbios",
        probe: Probe::File("/usr/share/bochs/BIOS-bochs-latest"),
        with: &[],
    },
    Package {
        name: "vgabios",
        probe: Probe::File(VGABIOS_PATH),
        with: &[],
    },
    OVMF,
];
const QEMU: [Package; 2] = [
    Package {
        name: "qemu-system-x86",
        probe: Probe::Binary("qemu-system-x86_64"),
        with: &[],
    },
    OVMF,
];
const GDB: Package = Package {
    name: "gdb",
    probe: Probe::Binary("gdb"),
    with: &[],
};

/// Checks (and as root, installs) the Rust targets and the packages behind `needs`.
pub fn ensure(needs: &[Need]) -> Result<()> {
    ensure_rust_targets()?;
    let missing = missing_packages(needs);
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let sudo = !running_as_root();
    if sudo && !passwordless_sudo() {
        return Err(Error::Setup(format!(
            "missing Debian packages: {list}\n  run: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y {list}"
        )));
    }
    println!(
        "xtask: installing {list}{}…",
        if sudo { " (sudo)" } else { "" }
    );
    apt(sudo, &["update"])?;
    apt(sudo, &[&["install", "-y"][..], &missing].concat())?;
    match missing_packages(needs).is_empty() {
        true => Ok(()),
        false => Err(Error::Setup(format!(
            "{list} still missing after apt-get install"
        ))),
    }
}

fn missing_packages(needs: &[Need]) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for need in needs {
        let packages: &[Package] = match need {
            Need::Bochs => &BOCHS,
            Need::Qemu => &QEMU,
            Need::Gdb => std::slice::from_ref(&GDB),
        };
        for package in packages {
            if package.installed() {
                continue;
            }
            for name in std::iter::once(&package.name).chain(package.with) {
                if !missing.contains(name) {
                    missing.push(name);
                }
            }
        }
    }
    missing
}

impl Package {
    fn installed(&self) -> bool {
        match self.probe {
            Probe::File(path) => Path::new(path).is_file(),
            Probe::Binary(name) => on_path(name),
        }
    }
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether `sudo` runs without asking (as on hosted CI runners).
fn passwordless_sudo() -> bool {
    Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|status| status.success())
}

fn apt(sudo: bool, args: &[&str]) -> Result<()> {
    let mut command = match sudo {
        true => {
            let mut command = Command::new("sudo");
            command.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            command
        }
        false => Command::new("apt-get"),
    };
    let status = command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context(|| "cannot run apt-get".to_string())?;
    match status.success() {
        true => Ok(()),
        false => Err(Error::Command {
            what: format!("apt-get {}", args.join(" ")),
            detail: status.to_string(),
        }),
    }
}

/// Adds the bare-metal targets to the pinned toolchain when `rustup` lacks them.
fn ensure_rust_targets() -> Result<()> {
    let Ok(out) = rustup(&["target", "list", "--installed"]).output() else {
        println!(
            "xtask: warning: rustup not found; assuming the targets {RUST_TARGETS:?} are installed"
        );
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = RUST_TARGETS
        .into_iter()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: rustup target add {}", missing.join(" "));
    let status = rustup(&[&["target", "add"][..], &missing].concat())
        .status()
        .context(|| "cannot run rustup".to_string())?;
    match status.success() {
        true => Ok(()),
        false => Err(Error::Setup(format!(
            "rustup target add {} failed",
            missing.join(" ")
        ))),
    }
}

/// `rustup` run in the repository, so rust-toolchain.toml picks the toolchain.
fn rustup(args: &[&str]) -> Command {
    let mut command = Command::new("rustup");
    command.args(args).current_dir(paths::repo_root());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_runs_need_no_bochs() {
        let names: Vec<&str> = QEMU.iter().map(|p| p.name).collect();
        assert!(!names.contains(&"bochs"));
        assert!(names.contains(&"ovmf"));
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("definitely-not-a-binary-xyz"));
    }
}
