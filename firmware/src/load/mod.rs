//! Loading and measuring: kernel segments, the initrd, the boot area and the hypervisor range,
//! each in pages of its own UEFI memory type.

pub mod kernel;
pub mod measure;
pub mod module;
pub mod pages;
pub mod reserve;
pub mod verify;
