//! `cargo xtask image`: the raw disk image OVMF boots, one FAT file system without a partition table,
//! or (`--gpt`) the same FAT volume as the EFI System Partition of a GPT disk for a USB stick.
//!
//! PLATFORM.md: a bare FAT image boots through OVMF's removable-media fallback (`\EFI\BOOT\BOOTX64.EFI`)
//! under Bochs; the runner's QEMU boot tests use the same image.

use std::fs::{self, OpenOptions};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::{gpt, paths};

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

/// The default image path: `target/rampart/rampart-<mode>[-production][-gpt].img`.
pub fn default_path(mode: Mode, production: bool, gpt: bool) -> PathBuf {
    let production = if production { "-production" } else { "" };
    let gpt = if gpt { "-gpt" } else { "" };
    paths::rampart_dir().join(format!("rampart-{}{production}{gpt}.img", mode.name()))
}

pub fn read_artifact(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).context(|| {
        format!(
            "cannot read {} (run `cargo xtask build`)",
            paths::display(path)
        )
    })
}

/// Writes a fresh image holding `contents` to `path` (replacing any old one): the bare FAT
/// volume the emulators boot.
pub fn write(path: &Path, contents: &Contents) -> Result<()> {
    let volume = fat_volume(contents)?;
    write_disk(path, IMAGE_BYTES, &[(0, &volume)])
}

/// Writes a GPT disk to `path` (`image --gpt`, for a USB stick): one EFI System Partition holding
/// the same FAT volume as [`write`] (UEFI firmware boots `\EFI\BOOT\BOOTX64.EFI` from it).
pub fn write_gpt(path: &Path, contents: &Contents) -> Result<()> {
    let mut volume = fat_volume(contents)?;
    // The same files give the same GUIDs (reproducible images); hashing them, not the 64 MiB
    // volume, keeps this quick in the runner's debug build.
    let digest = files_digest(contents);
    let (disk_seed, partition_seed) = digest.split_at(16);
    let gpt = gpt::encode(
        IMAGE_BYTES,
        gpt::guid_from(disk_seed.try_into().expect("16 bytes")),
        gpt::guid_from(partition_seed.try_into().expect("16 bytes")),
    );
    set_hidden_sectors(&mut volume, gpt.layout.first_lba)?;
    let layout = gpt.layout;
    write_disk(
        path,
        layout.disk_sectors * gpt::SECTOR,
        &[
            (0, &gpt.protective_mbr[..]),
            (gpt::SECTOR, &gpt.primary),
            (layout.first_lba * gpt::SECTOR, &volume),
            (layout.backup_entries_lba() * gpt::SECTOR, &gpt.backup),
        ],
    )
}

/// The SHA-256 over the digests of every file on the image.
fn files_digest(contents: &Contents) -> [u8; 32] {
    let parts = [
        &contents.firmware[..],
        &contents.kernel,
        &contents.initrd,
        contents.boot_cfg.as_bytes(),
    ];
    let digests: Vec<u8> = parts.iter().flat_map(|part| sha256(part)).collect();
    sha256(&digests)
}

/// A formatted FAT volume of [`IMAGE_BYTES`] holding `contents`.
fn fat_volume(contents: &Contents) -> Result<Vec<u8>> {
    let size = usize::try_from(IMAGE_BYTES).expect("the image fits in memory");
    let mut disk = Cursor::new(vec![0u8; size]);
    let options = fatfs::FormatVolumeOptions::new().volume_label(VOLUME_LABEL);
    fatfs::format_volume(&mut disk, options).map_err(fat_error("format"))?;
    let fs =
        fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).map_err(fat_error("mount"))?;
    let firmware = stamped_firmware(contents)?;
    populate(&fs, contents, &firmware)?;
    fs.unmount().map_err(fat_error("unmount"))?;
    Ok(disk.into_inner())
}

/// Offsets in the boot sector (BPB): sectors before the volume on its disk, the FAT16 FAT size
/// (0 on FAT32) and FAT32's backup boot sector.
const BPB_HIDDEN_SECTORS: usize = 28;
const BPB_FAT_SIZE_16: usize = 22;
const BPB_BACKUP_BOOT_SECTOR: usize = 50;

/// Records the partition's first LBA in the boot sector (and FAT32's backup of it): fatfs
/// formats as if the volume started the disk.
fn set_hidden_sectors(volume: &mut [u8], first_lba: u64) -> Result<()> {
    let hidden = u32::try_from(first_lba)
        .map_err(|_| Error::Image("partition starts beyond 2 TiB".into()))?
        .to_le_bytes();
    volume[BPB_HIDDEN_SECTORS..BPB_HIDDEN_SECTORS + 4].copy_from_slice(&hidden);
    let fat32 = volume[BPB_FAT_SIZE_16..BPB_FAT_SIZE_16 + 2] == [0, 0];
    if fat32 {
        let backup = usize::from(u16::from_le_bytes([
            volume[BPB_BACKUP_BOOT_SECTOR],
            volume[BPB_BACKUP_BOOT_SECTOR + 1],
        ]));
        let at = backup * gpt::SECTOR as usize + BPB_HIDDEN_SECTORS;
        if backup != 0 {
            volume[at..at + 4].copy_from_slice(&hidden);
        }
    }
    Ok(())
}

/// Chunk size for skipping zeros: the file stays sparse where the volume is empty.
const SPARSE_CHUNK: usize = 64 * 1024;

/// Writes a fresh file of `size` bytes at `path` with each `(offset, bytes)` in place (all-zero
/// chunks are left as holes, as `set_len` made them).
fn write_disk(path: &Path, size: u64, parts: &[(u64, &[u8])]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let what = || format!("cannot write {}", path.display());
    let mut disk = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .context(what)?;
    disk.set_len(size).context(what)?;
    for (offset, bytes) in parts {
        for (index, chunk) in bytes.chunks(SPARSE_CHUNK).enumerate() {
            if chunk.iter().all(|&byte| byte == 0) {
                continue;
            }
            let at = offset + (index * SPARSE_CHUNK) as u64;
            disk.seek(SeekFrom::Start(at)).context(what)?;
            disk.write_all(chunk).context(what)?;
        }
    }
    Ok(())
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

type Dir<'a, 'b> = fatfs::Dir<'a, &'b mut Cursor<Vec<u8>>>;

fn populate(
    fs: &fatfs::FileSystem<&mut Cursor<Vec<u8>>>,
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

    fn test_contents() -> Contents {
        let mut firmware = b"MZ firmware ".to_vec();
        firmware.extend_from_slice(&rampart_loader::expected_digests::MARKER);
        firmware.resize(firmware.len() + 72, 0);
        Contents {
            firmware,
            kernel: b"\x7fELF kernel".to_vec(),
            initrd: Vec::new(),
            boot_cfg: boot_cfg(Mode::Native),
            expected_kernel: None,
        }
    }

    #[test]
    fn image_holds_the_files() {
        let path = std::env::temp_dir().join(format!("xtask-image-{}.img", std::process::id()));
        let contents = test_contents();
        let firmware = contents.firmware.clone();
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

    /// The GPT disk's partition is the bare image's volume, but for the hidden-sector count;
    /// the primary header at LBA 1 and the backup at the last LBA are there.
    #[test]
    fn gpt_image_wraps_the_same_volume() {
        let dir = std::env::temp_dir();
        let bare = dir.join(format!("xtask-image-bare-{}.img", std::process::id()));
        let disk = dir.join(format!("xtask-image-gpt-{}.img", std::process::id()));
        write(&bare, &test_contents()).unwrap();
        write_gpt(&disk, &test_contents()).unwrap();
        let bare_bytes = fs::read(&bare).unwrap();
        let disk_bytes = fs::read(&disk).unwrap();
        let layout = gpt::Layout::for_partition(IMAGE_BYTES);
        assert_eq!(disk_bytes.len() as u64, layout.disk_sectors * gpt::SECTOR);
        let start = (layout.first_lba * gpt::SECTOR) as usize;
        let mut volume = disk_bytes[start..start + bare_bytes.len()].to_vec();
        assert_eq!(
            &volume[BPB_HIDDEN_SECTORS..BPB_HIDDEN_SECTORS + 4],
            &2048u32.to_le_bytes()
        );
        volume[BPB_HIDDEN_SECTORS..BPB_HIDDEN_SECTORS + 4].fill(0);
        assert!(
            volume == bare_bytes,
            "the partition holds the bare image's volume"
        );
        assert_eq!(&disk_bytes[510..512], &[0x55, 0xAA]);
        assert_eq!(&disk_bytes[512..520], b"EFI PART");
        let last = (layout.disk_sectors - 1) as usize * 512;
        assert_eq!(&disk_bytes[last..last + 8], b"EFI PART");
        fs::remove_file(&bare).unwrap();
        fs::remove_file(&disk).unwrap();
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
