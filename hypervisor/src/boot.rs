//! From hand-off to VMLAUNCH: own stack, own descriptor tables and page tables, VMX on, EPT,
//! VMCS, launch. Runs once; every failure ends in a clean, reported stop.
#![allow(unsafe_code)]

use crate::arch::descriptors::{self, HostTables};
use crate::arch::host_paging::{self, zeroed_frame};
use crate::arch::vm_entry;
use crate::ept::builder::{Ept, EptError, PageSizes};
use crate::ept::entry::{eptp, MemoryType, Permissions};
use crate::ept::layout;
use crate::frames::{FrameAllocator, FRAME_SIZE};
use crate::handoff::{HandOff, PhysRange};
use crate::policy::{self, ProtectedLayout};
use crate::state::{self, EptFrames, HypervisorState};
use crate::vcpu::GuestRegisters;
use crate::vmx::caps::{ept_cap, VmxCapabilities};
use crate::vmx::controls::Controls;
use crate::vmx::enable;
use crate::vmx::setup::{self, HostSetup, Structures};
use crate::vmx::vmcs::Vmcs;
use rampart_boot_info::BootInfo;
use x86::vmx::vmcs::control::SecondaryControls;

/// 64 KiB each for the boot stack and the VM-exit stack.
const STACK_FRAMES: u64 = 16;
/// Frames for EPT paging structures: the boot map needs a few dozen, page splits for later
/// grants one or two each.
const EPT_POOL_FRAMES: u64 = 512;

/// The hand-off and the frame allocator, copied into hypervisor memory before the stack switch.
static BOOT: spin::Once<spin::Mutex<(HandOff, FrameAllocator)>> = spin::Once::new();

/// Takes over the CPU: own stack, page tables, GDT/IDT, VMX on, EPT, and launches the guest.
///
/// # Safety
/// Call once, after ExitBootServices, with interrupts disabled, at CPL0 on an identity-mapped
/// address space; `handoff.reserved` and `handoff.image` must belong to the hypervisor alone,
/// `handoff.serial_port` must be a 16550 UART, and everything `handoff.guest` points to must be
/// prepared in guest RAM per the entry contract.
pub unsafe fn start(handoff: &HandOff) -> ! {
    // TSC at hand-off, for the boot-cost figure (hand-off to VMLAUNCH).
    let handoff_tsc = crate::arch::instructions::rdtsc();
    // SAFETY: the firmware initialised this UART and hands it to us (contract above).
    unsafe { crate::console::init(handoff.serial_port, handoff.log_level) };
    crate::locks::set_page_table_policy(handoff.lock_page_tables);
    let mut frames = FrameAllocator::new(handoff.reserved);
    let Some(stack) = frames.allocate(STACK_FRAMES) else {
        fatal!("reserved range too small for a stack")
    };
    BOOT.call_once(|| spin::Mutex::new((*handoff, frames)));
    let stack_top = stack + STACK_FRAMES * FRAME_SIZE;
    // SAFETY: the stack lies in the reserved range, which the hypervisor owns, and is used by
    // nothing else; its top is page aligned.
    unsafe { vm_entry::switch_stack(handoff_tsc, stack_top, continue_on_own_stack) }
}

extern "sysv64" fn continue_on_own_stack(handoff_tsc: u64) -> ! {
    let Some(boot) = BOOT.get() else {
        fatal!("no hand-off")
    };
    let mut boot = boot.lock();
    let (handoff, frames) = &mut *boot;
    launch(handoff, frames, handoff_tsc)
}

fn out_of_frames(what: &str) -> ! {
    fatal!("out of hypervisor frames for {what}")
}

/// From the hand-off to VMLAUNCH, in phases: the host's own tables and VMX root, the
/// protected layout and EPT, the platform taken over, the VMCS. Every failure on the way stops
/// the hypervisor with the error's message.
fn launch(handoff: &HandOff, frames: &mut FrameAllocator, handoff_tsc: u64) -> ! {
    let (tables, boot_info, top, (caps, controls)) = enter_vmx_root(handoff, frames);
    let state = protect(handoff, boot_info, top, caps, controls, frames);
    take_platform(handoff, frames);
    let vmcs = prepare_vmcs(handoff, frames, state, tables);
    let handoff_cycles = crate::arch::instructions::rdtsc().wrapping_sub(handoff_tsc);
    let logging = crate::console::cycles();
    log::info!(
        "hand-off to VMLAUNCH: {handoff_cycles} TSC cycles, {} without serial logging ({logging})",
        handoff_cycles.saturating_sub(logging)
    );
    log::info!(
        "launching guest: RIP={:#x} RSP={:#x} CR3={:#x} in VMX non-root",
        handoff.guest.rip,
        handoff.guest.rsp,
        handoff.guest.cr3
    );
    let mut regs = GuestRegisters {
        rdi: handoff.guest.boot_info,
        ..GuestRegisters::default()
    };
    if handoff.gdb {
        crate::gdb::wait_for_debugger(&vmcs, &mut regs);
    }
    crate::cpus::quiet::entering_guest(0);
    // SAFETY: the VMCS is complete; host RIP is the exit stub and host RSP the top of an exit
    // stack nothing else uses; `regs` lives on this stack until VMLAUNCH has loaded it.
    unsafe { vm_entry::vm_launch(&regs) }
}

/// The boot CPU's own descriptor tables and page tables, then VMX root with a current VMCS.
fn enter_vmx_root(
    handoff: &HandOff,
    frames: &mut FrameAllocator,
) -> (
    HostTables,
    &'static BootInfo,
    u64,
    (VmxCapabilities, Controls),
) {
    // SAFETY: single CPU, interrupts off (`start` contract); from here on nothing uses the
    // firmware's GDT/IDT. The boot CPU is slot 0.
    let tables = unsafe { descriptors::install() };
    // SAFETY: slot 0 is the boot CPU's; host code never uses GS-relative addressing.
    unsafe { crate::cpus::set_this_cpu(0) };
    // SAFETY: the BootInfo lies in guest RAM prepared by the firmware, which the guest cannot
    // have touched yet: it has not run.
    let boot_info = unsafe { &*(handoff.guest.boot_info as *const BootInfo) };
    if !boot_info.is_valid() {
        fatal!("guest BootInfo has a bad magic or version");
    }
    let top = layout::address_space_top(boot_info.memory_regions());
    // SAFETY: frames come from the hypervisor's reserved range, identity-mapped by the
    // firmware's tables now and by the new ones after the switch, which cover all of [0, top),
    // including the image (code, statics) and the reserved range (stacks, frames).
    unsafe {
        let Some(pml4) = host_paging::build_identity_map(frames, top) else {
            out_of_frames("host page tables")
        };
        host_paging::activate(pml4);
    }
    crate::arch::instructions::enable_host_xsave();
    let (caps, controls) = enable::check().unwrap_or_else(|e| fatal!("{e}"));
    log::info!("VMX capabilities: {caps}");
    // SAFETY: `check` passed; CPL0, interrupts off; frames are ours and identity-mapped.
    unsafe { enable::enter(&caps, frames) }.unwrap_or_else(|e| fatal!("{e}"));
    log::info!(
        "VMXON ok, VMCS current (revision {:#x})",
        caps.revision_id()
    );

    (tables, boot_info, top, (caps, controls))
}

/// The protected layout from the measured images, and the EPT that enforces it from the first
/// guest instruction (hypervisor/DESIGN.md invariants 1-4); recorded as the hypervisor's state.
fn protect(
    handoff: &HandOff,
    boot_info: &BootInfo,
    top: u64,
    caps: VmxCapabilities,
    controls: Controls,
    frames: &mut FrameAllocator,
) -> &'static HypervisorState {
    let regions = boot_info.memory_regions();
    let excluded = [handoff.reserved, handoff.image, handoff.smm_area];
    let layout = ProtectedLayout {
        segments: handoff.kernel_segments,
        initrd: initrd_range(boot_info),
        hypervisor: excluded,
        text_rights: if caps.ept_has(ept_cap::EXECUTE_ONLY) {
            Permissions::EXECUTE_ONLY
        } else {
            Permissions::READ_EXECUTE
        },
        program_text_rights: if controls.has_secondary(SecondaryControls::MODE_BASED_EPT) {
            Permissions::READ_USER_EXECUTE
        } else {
            Permissions::READ_EXECUTE
        },
    };
    let ecam = crate::devices::ecam::checked_windows(&handoff.mcfg, regions, &excluded);
    let ept =
        build_ept(&caps, frames, regions, &layout, &ecam, top).unwrap_or_else(|e| fatal!("{e}"));
    state::init(HypervisorState {
        caps,
        controls,
        hypervisor_ranges: excluded,
        layout,
        eptp: ept,
        mmio_window: mmio_window(regions),
        ecam,
        program_text: program_text(layout.initrd),
    })
}

/// The platform taken from the guest: SMM's default SMBASE, every AP into VMX root, the
/// self-check's baseline, PCI bus mastering and the ACPI sleep registers.
fn take_platform(handoff: &HandOff, frames: &mut FrameAllocator) {
    // SAFETY: the firmware reserved `smm_area` for the hypervisor; it is out of EPT (above).
    if unsafe { crate::smm::install_rsm_handler(handoff.smm_area) } {
        log::info!("SMM: SMBASE and SMRAM lock cannot be read outside SMM; default SMBASE area {:#x}+{:#x} taken from the guest with an RSM-only handler (an SMI runs no guest code)",
            handoff.smm_area.start,
            handoff.smm_area.length
        );
    } else {
        log::warn!("SMM: default SMBASE area not reserved by the firmware: if SMBASE was never relocated, an SMI runs guest-writable code"
        );
    }
    crate::smp::boot_cpus::bring_up_all(handoff, frames);
    // SAFETY: `handoff.image` is this EFI image as the firmware measured it, identity-mapped.
    if !unsafe { crate::selfcheck::record(handoff.image) } {
        log::warn!("self-check: PE headers unreadable, no baseline");
    }
    let mut sweep = crate::devices::sweep::run();
    for &block in handoff.acpi_sleep.iter().flatten() {
        sweep.add_sleep_block(block);
    }
    let sweep = crate::devices::DMA_BLOCKS.call_once(|| sweep);
    log::info!(
        "PCI: {} functions, bus mastering turned off on {}, {} IDE bus-master register blocks trapped",
        sweep.functions,
        sweep.bus_master_cleared,
        sweep.dma_blocks.len()
    );
    if sweep.untrapped_dma_blocks > 0 {
        fatal!(
            "PCI: {} more IDE bus-master register blocks than the {} the hypervisor traps; their DMA would be unmediated, so the guest does not start",
            sweep.untrapped_dma_blocks,
            crate::devices::ports::MAX_DMA_BLOCKS
        );
    }
    log::info!(
        "ACPI sleep: SLP_EN refused on {} control registers (I/O ports {:x?}): no S1-S4 resume outside the hypervisor",
        sweep.sleep.blocks().len(),
        sweep.sleep.blocks()
    );
    if sweep.untrapped_sleep_blocks > 0 {
        fatal!(
            "ACPI sleep: {} more sleep-control registers than the {} the hypervisor traps; a sleep request through them would resume outside the hypervisor, so the guest does not start",
            sweep.untrapped_sleep_blocks,
            crate::devices::sleep::MAX_SLEEP_BLOCKS
        );
    }
}

/// The VMX bitmaps and the launch VMCS of the boot CPU (checked against SDM chapter 27 in
/// development builds), and the template the APs' vCPUs start from.
fn prepare_vmcs(
    handoff: &HandOff,
    frames: &mut FrameAllocator,
    state: &HypervisorState,
    tables: HostTables,
) -> Vmcs {
    let (io_bitmap_a, bits_a) = bitmap(frames, "I/O bitmap A");
    let (io_bitmap_b, bits_b) = bitmap(frames, "I/O bitmap B");
    crate::devices::ports::build_bitmaps(bits_a, bits_b, &crate::devices::trapped());
    let (msr_bitmap, msr_bits) = bitmap(frames, "MSR bitmap");
    crate::exits::msr_bitmap::build(msr_bits);
    let structures = Structures {
        eptp: state.eptp,
        msr_bitmap,
        io_bitmap_a,
        io_bitmap_b,
        vpid: if state.controls.has_secondary(SecondaryControls::ENABLE_VPID) {
            setup::GUEST_VPID
        } else {
            0
        },
    };
    let Some(exit_stack) = frames.allocate(STACK_FRAMES) else {
        out_of_frames("exit stack")
    };
    // SAFETY: reading CR3 has no side effects.
    let host_cr3 = unsafe { x86::controlregs::cr3() };
    let host = HostSetup {
        cr3: host_cr3,
        tables,
        exit_stack_top: exit_stack + STACK_FRAMES * FRAME_SIZE,
        exit_entry: vm_entry::vm_exit_entry as *const () as u64,
        cpu_slot: 0,
    };
    // SAFETY: `enter` made a VMCS current and it stays current from here on.
    let vmcs = unsafe { Vmcs::assume_current() };
    // SAFETY: `enter` made this VMCS current; the structures are hypervisor-owned and
    // initialised (EPT leaves the hypervisor out); `host` describes our own tables, exit stack
    // and exit stub.
    unsafe { crate::smp::vcpu_start::write_launch_vmcs(&vmcs, &structures, &host, &handoff.guest) };
    crate::smp::vcpu_start::TEMPLATE.call_once(|| crate::smp::vcpu_start::Template {
        structures,
        host_cr3,
    });
    log::debug!(
        "{} KiB of hypervisor frames left",
        frames.remaining() / 1024
    );
    vmcs
}

/// Builds the EPT: identity map, RAM read/write and never executable, then the measured
/// kernel text R-X and read-only data and initrd R-- (hypervisor/DESIGN.md invariants 1-4), before
/// the first guest instruction. Keeps it in `state::EPT` and returns the EPT pointer.
fn build_ept(
    caps: &VmxCapabilities,
    frames: &mut FrameAllocator,
    regions: &[rampart_boot_info::MemoryRegion],
    layout: &ProtectedLayout,
    ecam: &crate::devices::ecam::Windows,
    top: u64,
) -> Result<u64, EptError> {
    let sizes = PageSizes {
        large_2m: caps.ept_has(ept_cap::PAGE_2M),
        huge_1g: caps.ept_has(ept_cap::PAGE_1G),
    };
    let Some(pool) = frames.allocate(EPT_POOL_FRAMES) else {
        out_of_frames("EPT tables")
    };
    let pool = FrameAllocator::new(PhysRange::new(pool, EPT_POOL_FRAMES * FRAME_SIZE));
    // SAFETY: the pool was just carved out of the reserved range and is used for nothing else.
    let mut ept = Ept::new(unsafe { EptFrames::new(pool) }, sizes)?;
    layout::build_identity_map(&mut ept, regions, &layout.hypervisor, top)?;
    policy::operations::apply_initial(&mut ept, layout)?;
    for page in crate::devices::platform::READ_ONLY_PAGES {
        ept.map(page, FRAME_SIZE, Permissions::READ, MemoryType::Uncacheable)?;
    }
    crate::devices::ecam::map_read_only(&mut ept, ecam)?;
    let [reserved, image, _] = layout.hypervisor;
    log::info!("EPT: identity map of {} GiB in {} tables ({} KiB), 2M pages {}, 1G pages {}; hypervisor {:#x}+{:#x} and image {:#x}+{:#x} absent",
        top >> 30,
        ept.table_count(),
        ept.table_count() * 4,
        if sizes.large_2m { "on" } else { "off" },
        if sizes.huge_1g { "on" } else { "off" },
        reserved.start,
        reserved.length,
        image.start,
        image.length
    );
    for (range, rights) in layout.overrides() {
        log::info!("policy: {:#x}+{:#x} {rights:?}", range.start, range.length);
    }
    log::info!(
        "policy: all other RAM rw- (W^X: nothing else executable); IOAPIC and HPET pages r--"
    );
    if crate::devices::ecam::total_bytes(ecam) != 0 {
        log::info!(
            "ECAM: {} MiB read-only (configuration writes must use the filtered 0xCF8/0xCFC)",
            crate::devices::ecam::total_bytes(ecam) >> 20
        );
    }
    let table_type = if caps.ept_has(ept_cap::MEMORY_TYPE_WB) {
        MemoryType::WriteBack
    } else {
        MemoryType::Uncacheable
    };
    let pointer = eptp(ept.pml4(), table_type);
    *state::EPT.lock() = Some(ept);
    Ok(pointer)
}

/// The executable segments of the initrd's programs, parsed from the measured initrd (guest
/// RAM the guest has not run on yet, R-- in EPT from its first instruction).
fn program_text(initrd: PhysRange) -> crate::policy::program_text::ProgramText {
    if initrd.length == 0 {
        return crate::policy::program_text::ProgramText::default();
    }
    // SAFETY: the firmware loaded and measured the initrd there; identity-mapped RAM.
    let bytes =
        unsafe { core::slice::from_raw_parts(initrd.start as *const u8, initrd.length as usize) };
    let text = crate::policy::program_text::ProgramText::of_initrd(bytes);
    log::info!(
        "policy: {} executable segments in the initrd's programs (GrantExecute offsets)",
        text.segments()
    );
    text
}

/// Where PCI memory BARs may lie: from the top of everything but MMIO and firmware-reserved
/// ranges below 4 GiB, up to the IOAPIC/LAPIC range.
fn mmio_window(regions: &[rampart_boot_info::MemoryRegion]) -> (u64, u64) {
    use rampart_boot_info::MemoryKind;
    const FOUR_GIB: u64 = 1 << 32;
    let low_ram_top = regions
        .iter()
        .filter(|r| {
            !matches!(
                r.kind(),
                Some(MemoryKind::Mmio | MemoryKind::Reserved) | None
            )
        })
        .map(|r| r.end())
        .filter(|&end| end <= FOUR_GIB)
        .max()
        .unwrap_or(0);
    (low_ram_top, crate::devices::pci::PLATFORM_RANGE_START)
}

/// The measured initrd: the boot module named "initrd" (empty range if there is none).
fn initrd_range(boot_info: &BootInfo) -> PhysRange {
    boot_info
        .modules()
        .iter()
        .find(|m| m.name() == "initrd")
        .map_or(PhysRange::new(0, 0), |m| PhysRange::new(m.start, m.length))
}

/// A fresh, zeroed 4 KiB frame for `what`: its address and its bytes.
fn bitmap(frames: &mut FrameAllocator, what: &str) -> (u64, &'static mut [u8; 4096]) {
    // SAFETY: the allocator hands out identity-mapped frames of the reserved range.
    let Some(frame) = (unsafe { zeroed_frame(frames) }) else {
        out_of_frames(what)
    };
    // SAFETY: a fresh, zeroed, identity-mapped 4 KiB frame nothing else references.
    (frame, unsafe { &mut *(frame as *mut [u8; 4096]) })
}

/// Checks that this CPU can run Rampart, without changing any state: CPUID, IA32_FEATURE_CONTROL,
/// capability MSRs and control fitting. Callable under UEFI boot services.
pub fn probe() -> Result<VmxSummary, enable::VmxError> {
    enable::check().map(|(caps, controls)| VmxSummary { caps, controls })
}

/// What [`probe`] found: Displays as a one-line summary.
#[derive(Debug)]
pub struct VmxSummary {
    caps: VmxCapabilities,
    controls: Controls,
}

impl core::fmt::Display for VmxSummary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}; controls pin={:#x} proc={:#x} proc2={:#x} exit={:#x} entry={:#x}",
            self.caps,
            self.controls.pinbased,
            self.controls.primary,
            self.controls.secondary,
            self.controls.exit,
            self.controls.entry
        )
    }
}
