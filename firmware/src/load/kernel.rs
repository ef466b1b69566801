//! Loading the kernel's PT_LOAD segments at their exact physical addresses.

use rampart_loader::elf::KernelImage;
use rampart_loader::memory_map::memory_type;
use rampart_loader::PAGE_SIZE;
use uefi::boot::AllocateType;

use super::pages::Pages;
use crate::discover::files::KERNEL_PATH;
use crate::fail::BootError;
use crate::log::debug;

/// Allocates every page run of the kernel (type KERNEL) and copies the segments in; the
/// allocation is zeroed, so each bss tail is zero. The pages stay allocated for the guest.
pub fn load(kernel: &KernelImage, file: &[u8]) -> Result<(), BootError> {
    let (runs, count) = kernel.page_runs();
    for &(start, pages) in &runs[..count] {
        let mut run = Pages::allocate(
            AllocateType::Address(start),
            memory_type::KERNEL,
            pages,
            KERNEL_PATH,
        )?;
        debug!("kernel pages {:#x}-{:#x}", run.start, run.end());
        let bytes = run.bytes_mut();
        for segment in kernel.segments() {
            if segment.paddr < start || segment.paddr_end() > start + pages * PAGE_SIZE {
                continue;
            }
            // Both ranges were validated by loader::elf (inside the file, inside the run).
            let at = (segment.paddr - start) as usize;
            let from = segment.offset as usize;
            let len = segment.filesz as usize;
            bytes[at..at + len].copy_from_slice(&file[from..from + len]);
            debug!(
                "segment paddr={:#x} filesz={:#x} memsz={:#x} flags={:#x}",
                segment.paddr, segment.filesz, segment.memsz, segment.flags.0
            );
        }
    }
    Ok(())
}
