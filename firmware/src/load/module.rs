//! Loading a boot module (the initrd) into pages of type MODULE.

use rampart_loader::memory_map::memory_type;
use rampart_loader::PAGE_SIZE;
use uefi::boot::AllocateType;

use super::measure::sha256;
use super::pages::{Pages, BELOW_4G};
use crate::fail::BootError;

/// A module as the BootInfo describes it.
#[derive(Clone, Copy, Debug)]
pub struct LoadedModule {
    pub start: u64,
    pub length: u64,
    pub sha256: [u8; 32],
}

pub fn load(path: &'static str, file: &[u8]) -> Result<LoadedModule, BootError> {
    let length = file.len() as u64;
    let pages = length.div_ceil(PAGE_SIZE);
    let mut module = Pages::allocate(
        AllocateType::MaxAddress(BELOW_4G),
        memory_type::MODULE,
        pages,
        path,
    )?;
    module.bytes_mut()[..file.len()].copy_from_slice(file);
    Ok(LoadedModule {
        start: module.start,
        length,
        sha256: sha256(file),
    })
}
