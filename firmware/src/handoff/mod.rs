//! Hand-off: ExitBootServices, the guest's BootInfo and boot area, then the hypervisor or the
//! kernel itself.

mod boot_info;

use rampart_boot_info::BootMode;
use rampart_hypervisor::handoff::{KernelSegment, SegmentKind, MAX_SEGMENTS};
use rampart_hypervisor::{GuestEntry, HandOff, PhysRange};
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
fn kernel_segments(prepared: &Prepared) -> [Option<KernelSegment>; MAX_SEGMENTS] {
    let mut out = [None; MAX_SEGMENTS];
    for (slot, segment) in out.iter_mut().zip(prepared.kernel.segments()) {
        *slot = Some(KernelSegment {
            range: PhysRange::new(segment.paddr, segment.memsz),
            vaddr: segment.vaddr,
            kind: SegmentKind::from_elf_flags(segment.flags.0),
        });
    }
    out
}

// Every segment the loader accepts fits in the hand-off.
const _: () = assert!(rampart_loader::elf::MAX_SEGMENTS <= MAX_SEGMENTS);

pub fn go(mut prepared: Prepared) -> ! {
    let boot_area_type = MemoryType::custom(memory_type::BOOT_AREA);
    #[allow(unsafe_code)]
    // SAFETY: nothing that depends on boot services outlives this call: the ESP, protocols and
    // file buffers were dropped in `flow::prepare`, the heap is not used from here on (only
    // fixed-size values and `format_args!`), and console output checks `boot_services_exited`.
    let map = unsafe { uefi::boot::exit_boot_services(Some(boot_area_type)) };
    fail::boot_services_exited();
    let hypervisor = prepared.config.mode == BootMode::Hypervisor;
    let excluded = excluded(&prepared, hypervisor);
    let guest = build_boot_area(&mut prepared, &map, &excluded);
    match prepared.reserved {
        Some(reserved) if hypervisor => {
            info!("handing off to the hypervisor");
            let handoff = handoff(&prepared, reserved, guest);
            // `go` is called once (from `flow`) and never returns. ExitBootServices disabled
            // interrupts (EDK2 does so on exit) and the firmware executes no STI.
            #[allow(unsafe_code)]
            // SAFETY: once, after ExitBootServices, interrupts off, at CPL0 on UEFI's identity map;
            // `reserved` and `image` are kept out of the guest memory map; COM1 is a 16550; the
            // boot area, kernel and initrd are prepared in guest RAM per the entry contract.
            unsafe {
                rampart_hypervisor::start(&handoff)
            }
        }
        _ => {
            info!("booting natively: entry={:#x}", guest.rip);
            // Nothing of the firmware runs after this call.
            #[allow(unsafe_code)]
            // SAFETY: after ExitBootServices; the boot area was just built for `guest`: its GDT,
            // stack and tables, which identity-map all RAM (this code and stack included) and
            // map the kernel's loaded segments at their virtual addresses, entry included.
            unsafe {
                crate::arch::native_entry::enter(&guest)
            }
        }
    }
}

/// The ranges kept out of the guest's memory map: in hv mode the hypervisor's reserved range,
/// its image and the default SMBASE area.
fn excluded(prepared: &Prepared, hypervisor: bool) -> [Excluded; 3] {
    let mut excluded = [Excluded { start: 0, end: 0 }; 3];
    if let (true, Some(reserved)) = (hypervisor, prepared.reserved) {
        excluded[0] = Excluded {
            start: reserved.start,
            end: reserved.end(),
        };
        excluded[1] = Excluded {
            start: prepared.image.start,
            end: prepared.image.end(),
        };
        if let Some(smm) = prepared.smm_area {
            excluded[2] = Excluded {
                start: smm.start,
                end: smm.end(),
            };
        }
    }
    excluded
}

/// Fills the BootInfo and builds the boot area (GDT, stack, page tables mapping all RAM and
/// the kernel's segments) in guest RAM: the guest's entry state.
fn build_boot_area(
    prepared: &mut Prepared,
    map: &uefi::mem::memory_map::MemoryMapOwned,
    excluded: &[Excluded; 3],
) -> GuestEntry {
    let info = match boot_info::fill(&prepared, memory::regions(map), excluded) {
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
    GuestEntry {
        rip: prepared.kernel.entry,
        rsp: area.stack_top,
        boot_info: area.boot_info,
        cr3: area.cr3,
        gdt_base: area.gdt_base,
        gdt_limit: area.gdt_limit,
        tss_base: area.tss_base,
        tss_limit: area.tss_limit,
    }
}

/// What the hypervisor is handed: the reserved range, the guest's entry state, the measured
/// kernel segments and the platform the firmware found.
fn handoff(prepared: &Prepared, reserved: PhysRange, guest: GuestEntry) -> HandOff {
    HandOff {
        reserved,
        image: prepared.image,
        guest,
        kernel_segments: kernel_segments(&prepared),
        serial_port: COM1,
        log_level: prepared.config.log as u8,
        gdb: prepared.config.gdb,
        lock_page_tables: prepared.config.lock_page_tables,
        cpus: core::array::from_fn(|slot| prepared.cpus.ids().get(slot).copied()),
        ap_trampoline: prepared.ap_trampoline.unwrap_or(0),
        smm_area: prepared.smm_area.unwrap_or(PhysRange::new(0, 0)),
        mcfg: prepared.platform.mcfg,
        acpi_sleep: prepared.platform.sleep,
    }
}
