//! Where things live: the repository root, cargo's target directory and the runner's output folders.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `ci/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ci/ has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// `target/rampart/`: disk images, run directories and test results.
pub fn rampart_dir() -> PathBuf {
    target_dir().join("rampart")
}

/// `target/rampart/runs/<name>/`: one emulator run's image copy, config and logs.
pub fn run_dir(name: &str) -> PathBuf {
    rampart_dir().join("runs").join(name)
}

/// The guest kernel ELF produced by `cargo xtask build`.
pub fn kernel_elf() -> PathBuf {
    target_dir().join("x86_64-unknown-none/release/rampart-kernel")
}

/// A user program of the `rampart-user` package produced by `cargo xtask build`.
pub fn user_program(name: &str) -> PathBuf {
    target_dir().join("x86_64-unknown-none/release").join(name)
}

/// The UEFI firmware application produced by `cargo xtask build`.
/// Where the production build (no `gdb` feature) goes.
pub fn production_target_dir() -> PathBuf {
    target_dir().join("production")
}

/// The production firmware (`build::build_production`).
pub fn production_firmware_efi() -> PathBuf {
    production_target_dir().join("x86_64-unknown-uefi/release/rampart-firmware.efi")
}

pub fn firmware_efi() -> PathBuf {
    target_dir().join("x86_64-unknown-uefi/release/rampart-firmware.efi")
}

/// Shows `path` relative to the repository root when it lies inside it.
pub fn display(path: &Path) -> String {
    let root = repo_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
