//! `cargo xtask image`: the raw disk image OVMF boots, one FAT file system without a partition table.
//!
//! PLATFORM.md: a bare FAT image boots through OVMF's removable-media fallback (`\EFI\BOOT\BOOTX64.EFI`)
//! under Bochs; the runner's QEMU boot tests use the same image.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::paths;

/// Size of every disk image.
pub const IMAGE_BYTES: u64 = 64 * 1024 * 1024;
/// Volume label of the FAT file system (11 bytes, space padded).
const VOLUME_LABEL: [u8; 11] = *b"RAMPART    ";

/// How the firmware hands off: through the hypervisor, or straight to the kernel (baseline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Hv,
    Native,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "hv" => Some(Mode::Hv),
            "native" => Some(Mode::Native),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Hv => "hv",
            Mode::Native => "native",
        }
    }
}

/// The files that go on the image, as bytes (tests corrupt them before writing).
pub struct Contents {
    pub firmware: Vec<u8>,
    pub kernel: Vec<u8>,
    pub initrd: Vec<u8>,
    pub boot_cfg: String,
    /// The kernel digest to stamp into the firmware instead of `kernel`'s own (tests of
    /// verified boot swap the kernel after stamping).
    pub expected_kernel: Option<[u8; 32]>,
}

impl Contents {
    /// The built firmware, kernel and user programs (packed into the initrd) and the boot config
    /// for `mode`.
    pub fn from_build(mode: Mode) -> Result<Contents> {
        let mut contents =
            Contents::from_files(mode, &paths::firmware_efi(), &paths::kernel_elf())?;
        contents.initrd = crate::initrd::from_build()?;
        Ok(contents)
    }

    /// Given firmware and kernel files, an empty initrd and the boot config for `mode`.
    pub fn from_files(mode: Mode, firmware: &Path, kernel: &Path) -> Result<Contents> {
        Ok(Contents {
            firmware: read_artifact(firmware)?,
            kernel: read_artifact(kernel)?,
            initrd: Vec::new(),
            boot_cfg: boot_cfg(mode),
            expected_kernel: None,
        })
    }
}

/// The text of `\rampart\boot.cfg`.
pub fn boot_cfg(mode: Mode) -> String {
    format!("mode = {}\nlog = info\n", mode.name())
}

/// The default image path for `mode`: `target/rampart/rampart-<mode>.img`.
pub fn default_path(mode: Mode) -> PathBuf {
    paths::rampart_dir().join(format!("rampart-{}.img", mode.name()))
}

fn read_artifact(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).context(|| {
        format!(
            "cannot read {} (run `cargo xtask build`)",
            paths::display(path)
        )
    })
}

/// Writes a fresh image holding `contents` to `path` (replacing any old one).
pub fn write(path: &Path, contents: &Contents) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .context(|| format!("cannot create {}", path.display()))?;
    disk.set_len(IMAGE_BYTES)
        .context(|| format!("cannot size {}", path.display()))?;
    let options = fatfs::FormatVolumeOptions::new().volume_label(VOLUME_LABEL);
    fatfs::format_volume(&mut disk, options).map_err(fat_error("format"))?;
    let fs =
        fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).map_err(fat_error("mount"))?;
    let firmware = stamped_firmware(contents)?;
    populate(&fs, contents, &firmware)?;
    fs.unmount().map_err(fat_error("unmount"))
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The firmware with the kernel's and initrd's digests stamped into it (verified boot: the
/// firmware refuses anything else, so a Secure Boot signature over BOOTX64.EFI, made after
/// this step, covers the whole chain).
pub fn stamped_firmware(contents: &Contents) -> Result<Vec<u8>> {
    let mut firmware = contents.firmware.clone();
    let kernel = contents
        .expected_kernel
        .unwrap_or_else(|| sha256(&contents.kernel));
    let initrd = (!contents.initrd.is_empty()).then(|| sha256(&contents.initrd));
    rampart_loader::expected_digests::stamp(&mut firmware, kernel, initrd)
        .map_err(|e| Error::Image(format!("cannot stamp BOOTX64.EFI: {e}")))?;
    Ok(firmware)
}

type Dir<'a, 'b> = fatfs::Dir<'a, &'b mut fs::File>;

fn populate(
    fs: &fatfs::FileSystem<&mut fs::File>,
    contents: &Contents,
    firmware: &[u8],
) -> Result<()> {
    let root = fs.root_dir();
    let efi_boot = mkdirs(&root, &["EFI", "BOOT"])?;
    put(&efi_boot, "BOOTX64.EFI", firmware)?;
    let rampart = mkdirs(&root, &["rampart"])?;
    put(&rampart, "kernel.elf", &contents.kernel)?;
    put(&rampart, "initrd", &contents.initrd)?;
    put(&rampart, "boot.cfg", contents.boot_cfg.as_bytes())
}

fn mkdirs<'a, 'b>(root: &Dir<'a, 'b>, names: &[&str]) -> Result<Dir<'a, 'b>> {
    let mut dir = root.clone();
    for name in names {
        dir = dir.create_dir(name).map_err(fat_error("mkdir"))?;
    }
    Ok(dir)
}

fn put(dir: &Dir<'_, '_>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut file = dir.create_file(name).map_err(fat_error("create"))?;
    file.truncate().map_err(fat_error("truncate"))?;
    file.write_all(bytes).map_err(fat_error("write"))?;
    file.flush().map_err(fat_error("flush"))
}

fn fat_error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |err| Error::Image(format!("FAT {what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn image_holds_the_files() {
        let path = std::env::temp_dir().join(format!("xtask-image-{}.img", std::process::id()));
        let mut firmware = b"MZ firmware ".to_vec();
        firmware.extend_from_slice(&rampart_loader::expected_digests::MARKER);
        firmware.resize(firmware.len() + 72, 0);
        let contents = Contents {
            firmware: firmware.clone(),
            kernel: b"\x7fELF kernel".to_vec(),
            initrd: Vec::new(),
            boot_cfg: boot_cfg(Mode::Native),
            expected_kernel: None,
        };
        write(&path, &contents).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), IMAGE_BYTES);
        assert_eq!(
            read_back(&path, "rampart/boot.cfg"),
            b"mode = native\nlog = info\n"
        );
        let stamped = read_back(&path, "EFI/BOOT/BOOTX64.EFI");
        assert_eq!(&stamped[..12], b"MZ firmware ");
        assert_eq!(stamped.len(), firmware.len());
        assert_eq!(
            &stamped[12 + 40..12 + 72],
            &sha256(b"\x7fELF kernel"),
            "kernel digest stamped"
        );
        assert_eq!(read_back(&path, "rampart/initrd"), b"");
        fs::remove_file(&path).unwrap();
    }

    fn read_back(image: &Path, name: &str) -> Vec<u8> {
        let mut disk = fs::File::open(image).unwrap();
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
        let mut bytes = Vec::new();
        let mut file = fs.root_dir().open_file(name).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    }
}
