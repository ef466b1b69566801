//! From hand-off to VMLAUNCH: own stack, own descriptor tables and page tables, VMX on, EPT,
//! VMCS, launch. Runs once; every failure ends in a clean, reported stop.
#![allow(unsafe_code)]

use crate::arch::host_paging::{self, zeroed_frame};
use crate::arch::{descriptors, vm_entry};
use crate::ept::builder::{Ept, PageSizes};
use crate::ept::entry::{eptp, MemoryType, Permissions};
use crate::ept::layout;
use crate::exits::stop::fatal;
use crate::frames::{FrameAllocator, FRAME_SIZE};
use crate::handoff::{HandOff, PhysRange};
use crate::policy::{self, ProtectedLayout};
use crate::state::EptFrames;
use crate::state::{self, HypervisorState};
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
/// The VPID of the one guest (0 is reserved for VMX root, SDM Vol. 3C 29.1).
pub const GUEST_VPID: u16 = 1;
const CPUID_1_ECX_XSAVE: u32 = 1 << 26;
const CR4_OSXSAVE: usize = 1 << 18;

static HANDOFF: spin::Once<HandOff> = spin::Once::new();
/// TSC at hand-off, for the boot-cost figure (hand-off to VMLAUNCH).
static HANDOFF_TSC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static mut GUEST_REGISTERS: GuestRegisters = GuestRegisters {
    rax: 0,
    rbx: 0,
    rcx: 0,
    rdx: 0,
    rsi: 0,
    rdi: 0,
    rbp: 0,
    r8: 0,
    r9: 0,
    r10: 0,
    r11: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
};

/// See [`crate::start`].
pub unsafe fn start(handoff: &HandOff) -> ! {
    HANDOFF_TSC.store(
        crate::arch::instructions::rdtsc(),
        core::sync::atomic::Ordering::Relaxed,
    );
    // SAFETY: the firmware initialised this UART and hands it to us (crate::start contract).
    unsafe { crate::console::init(handoff.serial_port, handoff.log_level) };
    let handoff = HANDOFF.call_once(|| *handoff);
    crate::exits::page_tables::set_policy(handoff.lock_page_tables);
    let mut frames = FrameAllocator::new(handoff.reserved);
    let Some(stack) = frames.allocate(STACK_FRAMES) else {
        fatal(format_args!("reserved range too small for a stack"))
    };
    FRAMES.call_once(|| spin::Mutex::new(frames));
    // SAFETY: the stack lies in the reserved range, which the hypervisor owns, and is used by
    // nothing else; its top is page aligned.
    unsafe { vm_entry::switch_stack(0, stack + STACK_FRAMES * FRAME_SIZE, continue_on_own_stack) }
}

static FRAMES: spin::Once<spin::Mutex<FrameAllocator>> = spin::Once::new();

extern "sysv64" fn continue_on_own_stack(_: u64) -> ! {
    let handoff = HANDOFF
        .get()
        .copied()
        .unwrap_or_else(|| fatal(format_args!("no hand-off")));
    let mut frames = FRAMES
        .get()
        .unwrap_or_else(|| fatal(format_args!("no frames")))
        .lock();
    match launch(&handoff, &mut frames) {
        Err(e) => fatal(format_args!("{e}")),
    }
}

/// Errors on the way to VMLAUNCH, each with the message the boot log shows.
#[derive(Debug)]
enum BootError {
    Vmx(enable::VmxError),
    Ept(crate::ept::builder::EptError),
    Vmcs(crate::vmx::vmcs::VmcsError),
    BadBootInfo,
    OutOfFrames(&'static str),
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Vmx(e) => write!(f, "{e}"),
            Self::Ept(e) => write!(f, "{e}"),
            Self::Vmcs(e) => write!(f, "{e}"),
            Self::BadBootInfo => f.write_str("guest BootInfo has a bad magic or version"),
            Self::OutOfFrames(what) => write!(f, "out of hypervisor frames for {what}"),
        }
    }
}

impl From<enable::VmxError> for BootError {
    fn from(e: enable::VmxError) -> Self {
        Self::Vmx(e)
    }
}
impl From<crate::ept::builder::EptError> for BootError {
    fn from(e: crate::ept::builder::EptError) -> Self {
        Self::Ept(e)
    }
}
impl From<crate::vmx::vmcs::VmcsError> for BootError {
    fn from(e: crate::vmx::vmcs::VmcsError) -> Self {
        Self::Vmcs(e)
    }
}

fn launch(
    handoff: &HandOff,
    frames: &mut FrameAllocator,
) -> Result<core::convert::Infallible, BootError> {
    // SAFETY: single CPU, interrupts off (crate::start contract); from here on nothing uses the
    // firmware's GDT/IDT. The boot CPU is slot 0.
    let tables = unsafe { descriptors::install() };
    // SAFETY: slot 0 is the boot CPU's; host code never uses GS-relative addressing.
    unsafe { crate::smp::cpus::set_this_cpu(0) };
    // SAFETY: the BootInfo lies in guest RAM prepared by the firmware, which the guest cannot
    // have touched yet: it has not run.
    let boot_info = unsafe { &*(handoff.guest.boot_info as *const BootInfo) };
    if !boot_info.is_valid() {
        return Err(BootError::BadBootInfo);
    }
    let regions = boot_info.memory_regions();
    let top = layout::address_space_top(regions);
    // SAFETY: frames come from the hypervisor's reserved range, identity-mapped by the
    // firmware's tables now and by the new ones after the switch, which cover all of [0, top),
    // including the image (code, statics) and the reserved range (stacks, frames).
    unsafe {
        let pml4 = host_paging::build_identity_map(frames, top)
            .ok_or(BootError::OutOfFrames("host page tables"))?;
        host_paging::activate(pml4);
    }
    enable_host_xsave();
    let (caps, controls) = enable::check()?;
    log::info!("VMX capabilities: {caps}");
    // SAFETY: `check` passed; CPL0, interrupts off; frames are ours and identity-mapped.
    unsafe { enable::enter(&caps, frames)? };
    log::info!(
        "VMXON ok, VMCS current (revision {:#x})",
        caps.revision_id()
    );

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
    };
    let ept = build_ept(&caps, frames, regions, &layout, top)?;
    let state = state::init(HypervisorState {
        caps,
        controls,
        hypervisor_ranges: excluded,
        layout,
        eptp: ept,
        mmio_window: mmio_window(regions),
        program_text: program_text(layout.initrd),
    });

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
    let sweep = crate::devices::sweep::run();
    let dma_blocks = crate::devices::DMA_BLOCKS.call_once(|| sweep);
    log::info!("PCI: {} functions, bus mastering turned off on {}, {} IDE bus-master register blocks trapped",
        sweep.functions,
        sweep.bus_master_cleared,
        sweep.dma_block_count
    );
    let (io_bitmap_a, io_bitmap_b) = io_bitmaps(frames, dma_blocks.dma_blocks())?;
    let structures = Structures {
        eptp: ept,
        msr_bitmap: msr_bitmap(frames)?,
        io_bitmap_a,
        io_bitmap_b,
        vpid: if controls.has_secondary(SecondaryControls::ENABLE_VPID) {
            GUEST_VPID
        } else {
            0
        },
    };
    let exit_stack = frames
        .allocate(STACK_FRAMES)
        .ok_or(BootError::OutOfFrames("exit stack"))?;
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
    // SAFETY: the structures are hypervisor-owned and initialised (EPT leaves the hypervisor
    // out); `host` describes our own tables, exit stack and exit stub.
    unsafe {
        setup::write_controls(&vmcs, &state.caps, &state.controls, &structures)?;
        setup::write_host_state(&vmcs, &state.controls, &host)?;
    }
    setup::write_guest_state(&vmcs, &state.caps, &state.controls, &handoff.guest)?;
    crate::smp::vcpu_start::TEMPLATE.call_once(|| crate::smp::vcpu_start::Template {
        structures,
        host_cr3,
        boot_entry: handoff.guest,
    });
    log::debug!(
        "{} KiB of hypervisor frames left",
        frames.remaining() / 1024
    );
    let handoff_cycles = crate::arch::instructions::rdtsc()
        .wrapping_sub(HANDOFF_TSC.load(core::sync::atomic::Ordering::Relaxed));
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
    // SAFETY: only this CPU, before launch, touches the register block; the VMCS is complete,
    // host RIP is the exit stub and host RSP the top of an exit stack nothing else uses.
    unsafe {
        let regs = &mut *core::ptr::addr_of_mut!(GUEST_REGISTERS);
        regs.rdi = handoff.guest.boot_info;
        if handoff.gdb {
            crate::gdb::wait_for_debugger(&vmcs, regs);
        }
        crate::smp::quiet::entering_guest(0);
        vm_entry::vm_launch(regs)
    }
}

/// The host needs CR4.OSXSAVE so that it can execute the guest's validated XSETBV.
pub(crate) fn enable_host_xsave() {
    if raw_cpuid::cpuid!(1).ecx & CPUID_1_ECX_XSAVE != 0 {
        // SAFETY: the CPU supports XSAVE (CPUID.1:ECX.XSAVE), so setting CR4.OSXSAVE is valid;
        // it only enables instructions.
        unsafe {
            let cr4 = x86::controlregs::cr4();
            x86::controlregs::cr4_write(
                cr4 | x86::controlregs::Cr4::from_bits_truncate(CR4_OSXSAVE),
            );
        }
    }
}

/// Builds the EPT: identity map, RAM read/write and never executable, then the measured
/// kernel text R-X and read-only data and initrd R-- (DESIGN.md invariants 1-4), before the
/// first guest instruction. Keeps it in `state::EPT` and returns the EPT pointer.
fn build_ept(
    caps: &VmxCapabilities,
    frames: &mut FrameAllocator,
    regions: &[rampart_boot_info::MemoryRegion],
    layout: &ProtectedLayout,
    top: u64,
) -> Result<u64, BootError> {
    let sizes = PageSizes {
        large_2m: caps.ept_has(ept_cap::PAGE_2M),
        huge_1g: caps.ept_has(ept_cap::PAGE_1G),
    };
    let pool = frames
        .allocate(EPT_POOL_FRAMES)
        .ok_or(BootError::OutOfFrames("EPT tables"))?;
    let pool = FrameAllocator::new(PhysRange::new(pool, EPT_POOL_FRAMES * FRAME_SIZE));
    // SAFETY: the pool was just carved out of the reserved range and is used for nothing else.
    let mut ept = Ept::new(unsafe { EptFrames::new(pool) }, sizes)?;
    layout::build_identity_map(&mut ept, regions, &layout.hypervisor, top)?;
    policy::operations::apply_initial(&mut ept, layout)?;
    for page in crate::devices::platform::READ_ONLY_PAGES {
        ept.map(page, FRAME_SIZE, Permissions::READ, MemoryType::Uncacheable)?;
    }
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
        log::info!(
            "policy: {:#x}+{:#x} {:?}",
            range.start,
            range.length,
            rights
        );
    }
    log::info!(
        "policy: all other RAM rw- (W^X: nothing else executable); IOAPIC and HPET pages r--"
    );
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
        return crate::policy::program_text::ProgramText::empty();
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
                Some(MemoryKind::Mmio) | Some(MemoryKind::Reserved) | None
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

fn msr_bitmap(frames: &mut FrameAllocator) -> Result<u64, BootError> {
    let bitmap = frame(frames, "MSR bitmap")?;
    // SAFETY: a fresh, zeroed, identity-mapped 4 KiB frame nothing else references.
    crate::exits::msr_bitmap::build(unsafe { &mut *(bitmap as *mut [u8; 4096]) });
    Ok(bitmap)
}

fn frame(frames: &mut FrameAllocator, what: &'static str) -> Result<u64, BootError> {
    // SAFETY: the allocator hands out identity-mapped frames of the reserved range.
    unsafe { zeroed_frame(frames) }.ok_or(BootError::OutOfFrames(what))
}

fn io_bitmaps(
    frames: &mut FrameAllocator,
    dma: &[crate::devices::ports::PortBlock],
) -> Result<(u64, u64), BootError> {
    let (a, b) = (
        frame(frames, "I/O bitmap A")?,
        frame(frames, "I/O bitmap B")?,
    );
    // SAFETY: two fresh, zeroed, identity-mapped 4 KiB frames nothing else references.
    unsafe {
        crate::devices::ports::build_bitmaps(
            &mut *(a as *mut [u8; 4096]),
            &mut *(b as *mut [u8; 4096]),
            dma,
        )
    };
    Ok((a, b))
}

/// See [`crate::probe`].
pub fn probe() -> Result<VmxSummary, enable::VmxError> {
    enable::check().map(|(caps, controls)| VmxSummary { caps, controls })
}

/// What [`crate::probe`] found: Displays as a one-line summary.
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
