//! Reserving the boot area and the hypervisor's range.

use rampart_hypervisor::{PhysRange, RESERVED_ALIGN, RESERVED_BYTES};
use rampart_loader::boot_area::Layout;
use rampart_loader::memory_map::memory_type;
use rampart_loader::{align_up, PAGE_SIZE};
use uefi::boot::AllocateType;

use super::pages::{Pages, BELOW_4G};
use crate::fail::{BootError, Problem};

/// Pages for the boot area (type BOOT_AREA), below 4 GiB.
pub fn boot_area(layout: &Layout) -> Result<Pages, BootError> {
    Pages::allocate(
        AllocateType::MaxAddress(BELOW_4G),
        memory_type::BOOT_AREA,
        layout.pages(),
        "boot area",
    )
}

/// `RESERVED_BYTES` aligned to `RESERVED_ALIGN` (type HYPERVISOR): allocates the size plus the
/// alignment slack, then frees the slack on both sides.
pub fn hypervisor() -> Result<PhysRange, BootError> {
    const STEP: &str = "hypervisor reserve";
    let slack_pages = (RESERVED_ALIGN - PAGE_SIZE) / PAGE_SIZE;
    let wanted_pages = RESERVED_BYTES / PAGE_SIZE;
    // Below 4 GiB: the APs' start-up code loads CR3 with the hypervisor's page tables from
    // 32-bit protected mode (SDM Vol. 3A 10.8.5).
    let whole = Pages::allocate(
        AllocateType::MaxAddress(BELOW_4G),
        memory_type::HYPERVISOR,
        wanted_pages + slack_pages,
        STEP,
    )?;
    let start = align_up(whole.start, RESERVED_ALIGN).unwrap_or(whole.start);
    let end = start + RESERVED_BYTES;
    let free = |from: u64, to: u64| {
        whole
            .free_range(from, (to - from) / PAGE_SIZE)
            .map_err(|status| {
                BootError::new(
                    STEP,
                    Problem::Allocate {
                        address: from,
                        pages: (to - from) / PAGE_SIZE,
                        status,
                    },
                )
            })
    };
    free(whole.start, start)?;
    free(end, whole.end())?;
    Ok(PhysRange::new(start, RESERVED_BYTES))
}

/// Highest address of a page a SIPI can start a CPU at: the vector is the page number, 8 bits
/// (SDM Vol. 3A 10.6.1, start-up IPI).
const BELOW_1M: u64 = 0xF_FFFF;

/// One page below 1 MiB for the APs' real-mode start-up code (type AP_TRAMPOLINE), or `None`
/// if the firmware has none left (then only the boot CPU runs).
pub fn ap_trampoline() -> Option<u64> {
    Pages::allocate(
        AllocateType::MaxAddress(BELOW_1M),
        memory_type::AP_TRAMPOLINE,
        1,
        "AP trampoline",
    )
    .ok()
    .map(|pages| pages.start)
}

/// The default SMBASE area `[0x30000, 0x40000)` for the hypervisor (type HYPERVISOR, so it
/// leaves the guest's memory map), or `None` if the firmware uses it.
pub fn smm_default_area() -> Option<PhysRange> {
    const SMBASE: u64 = 0x3_0000;
    const LENGTH: u64 = 0x1_0000;
    Pages::allocate(
        AllocateType::Address(SMBASE),
        memory_type::HYPERVISOR,
        LENGTH / PAGE_SIZE,
        "SMBASE area",
    )
    .ok()
    .map(|pages| PhysRange::new(pages.start, LENGTH))
}
