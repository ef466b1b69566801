//! Hand-off: ExitBootServices, the guest's BootInfo and boot area, then the hypervisor or the
//! kernel itself.

mod boot_info;

use rampart_boot_info::BootMode;
use rampart_hypervisor::policy::{self, KernelSegment, SegmentKind};
use rampart_hypervisor::{GuestEntry, HandOff};
use rampart_loader::memory_map::{memory_type, Excluded};
use rampart_loader::{boot_area, boot_area_kernel};
use uefi::boot::MemoryType;

use crate::arch::serial::COM1;
use crate::discover::memory;
use crate::fail::{self, BootError, Problem};
use crate::flow::Prepared;
use crate::log::info;

/// The kernel's loaded segments for the hypervisor's policy (at most as many as the loader
/// accepts, which equals the hypervisor's limit).
fn kernel_segments(prepared: &Prepared) -> [Option<KernelSegment>; policy::layout::MAX_SEGMENTS] {
    let mut out = [None; policy::layout::MAX_SEGMENTS];
    for (slot, segment) in out.iter_mut().zip(prepared.kernel.segments()) {
        *slot = Some(KernelSegment {
            range: rampart_hypervisor::PhysRange::new(segment.paddr, segment.memsz),
            kind: SegmentKind::from_elf_flags(segment.flags.0),
        });
    }
    out
}

// Every segment the loader accepts fits in the hand-off.
const _: () = assert!(rampart_loader::elf::MAX_SEGMENTS <= policy::layout::MAX_SEGMENTS);

pub fn go(mut prepared: Prepared) -> ! {
    // SAFETY: nothing that depends on boot services outlives this call: the ESP, protocols and
    // file buffers were dropped in `flow::prepare`, the heap is not used from here on (only
    // fixed-size values and `format_args!`), and console output checks `boot_services_exited`.
    #[allow(unsafe_code)]
    let map =
        unsafe { uefi::boot::exit_boot_services(Some(MemoryType::custom(memory_type::BOOT_AREA))) };
    fail::boot_services_exited();

    let hypervisor = prepared.config.mode == BootMode::Hypervisor;
    let mut excluded = [Excluded { start: 0, end: 0 }; 2];
    if let (true, Some(reserved)) = (hypervisor, prepared.reserved) {
        excluded[0] = Excluded {
            start: reserved.start,
            end: reserved.end(),
        };
        excluded[1] = Excluded {
            start: prepared.image.start,
            end: prepared.image.end(),
        };
    }
    let info = match boot_info::fill(&prepared, memory::regions(&map), &excluded) {
        Ok(info) => info,
        Err(error) => fail::boot_error(&error),
    };
    let base = prepared.boot_area.start;
    let area = match boot_area::build(
        prepared.boot_area.bytes_mut(),
        base,
        &prepared.layout,
        &info,
    ) {
        Ok(area) => area,
        Err(error) => fail::boot_error(&BootError::new("boot area", Problem::BootArea(error))),
    };
    // The kernel may be linked in the upper half: map its segments at their virtual addresses
    // too, and enter at the virtual e_entry (equal to the physical one for an identity-linked
    // kernel).
    let segments = prepared.kernel.segments();
    if let Err(error) = boot_area_kernel::map_kernel(
        prepared.boot_area.bytes_mut(),
        base,
        &prepared.layout,
        &area,
        segments,
    ) {
        fail::boot_error(&BootError::new("boot area", Problem::BootArea(error)));
    }
    let guest = GuestEntry {
        rip: prepared.kernel.entry,
        rsp: area.stack_top,
        boot_info: area.boot_info,
        cr3: area.cr3,
        gdt_base: area.gdt_base,
        gdt_limit: area.gdt_limit,
        tss_base: area.tss_base,
        tss_limit: area.tss_limit,
    };
    match prepared.reserved {
        Some(reserved) if hypervisor => {
            info!("handing off to the hypervisor");
            let handoff = HandOff {
                reserved,
                image: prepared.image,
                guest,
                kernel_segments: kernel_segments(&prepared),
                serial_port: COM1,
                log_level: prepared.config.log as u8,
                gdb: prepared.config.gdb,
            };
            // SAFETY: called once, after ExitBootServices; interrupts are off (the firmware
            // never enabled them after UEFI, and `start` owns the CPU from here); `reserved`
            // and `image` are left out of the guest memory map; the boot area, kernel and
            // initrd are prepared in guest RAM per the entry contract.
            #[allow(unsafe_code)]
            unsafe {
                rampart_hypervisor::start(&handoff)
            }
        }
        _ => {
            info!("booting natively: entry={:#x}", guest.rip);
            // SAFETY: after ExitBootServices; the boot area was just built for `guest` and
            // identity-maps all RAM, including this code and the current stack; the kernel
            // segments are loaded at their physical addresses; nothing of the firmware runs
            // afterwards.
            #[allow(unsafe_code)]
            unsafe {
                crate::arch::native_entry::enter(&guest)
            }
        }
    }
}
