//! Reading whole files from the ESP (the volume this image was loaded from).

use alloc::vec::Vec;

use uefi::boot::{self, ScopedProtocol};
use uefi::fs::{Error as FsError, FileSystem};
use uefi::proto::media::fs::SimpleFileSystem;
use uefi::{CString16, Status};

use crate::fail::{BootError, Problem};

pub const CONFIG_PATH: &str = "\\rampart\\boot.cfg";
pub const KERNEL_PATH: &str = "\\rampart\\kernel.elf";
pub const INITRD_PATH: &str = "\\rampart\\initrd";

/// The boot volume, opened once.
pub struct Esp(FileSystem);

impl Esp {
    pub fn open() -> Result<Self, BootError> {
        let volume: ScopedProtocol<SimpleFileSystem> =
            boot::get_image_file_system(boot::image_handle()).map_err(|e| {
                BootError::new("ESP", Problem::Uefi("open boot volume", e.status()))
            })?;
        Ok(Self(FileSystem::new(volume)))
    }

    /// The whole file, or `None` if it does not exist.
    pub fn read_optional(&mut self, path: &'static str) -> Result<Option<Vec<u8>>, BootError> {
        let fail = |status| BootError::new(path, Problem::Uefi("read", status));
        let name = CString16::try_from(path).map_err(|_| fail(Status::INVALID_PARAMETER))?;
        match self.0.read(name.as_ref()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(FsError::Io(io)) if io.uefi_error.status() == Status::NOT_FOUND => Ok(None),
            Err(FsError::Io(io)) => Err(fail(io.uefi_error.status())),
            Err(_) => Err(fail(Status::LOAD_ERROR)),
        }
    }

    /// The whole file; a missing file is an error.
    pub fn read_required(&mut self, path: &'static str) -> Result<Vec<u8>, BootError> {
        self.read_optional(path)?
            .ok_or(BootError::new(path, Problem::Missing))
    }
}
