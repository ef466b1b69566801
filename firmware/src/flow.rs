//! The boot flow before ExitBootServices: discover, load and measure, probe; then hand off.

use alloc::vec::Vec;
use rampart_boot_info::{ApicIds, BootMode};
use rampart_hypervisor::PhysRange;
use rampart_loader::boot_area::Layout;
use rampart_loader::config::BootConfig;
use rampart_loader::elf::{self, KernelImage};
use rampart_loader::{align_up, PAGE_SIZE};
use uefi::boot;
use uefi::proto::loaded_image::LoadedImage;
use uefi::Status;

use crate::arch::serial;
use crate::discover::config::mode_name;
use crate::discover::cpus::CpuList;
use crate::discover::files::{Esp, INITRD_PATH, KERNEL_PATH};
use crate::discover::{acpi, cpus, memory};
use crate::fail::{self, BootError, Outcome, Problem};
use crate::load::measure::{sha256, Hex};
use crate::load::module::LoadedModule;
use crate::load::pages::Pages;
use crate::load::{kernel, module, reserve, verify};
use crate::log::{debug, info};

/// Everything the hand-off needs, gathered while boot services still run.
pub struct Prepared {
    pub config: BootConfig,
    pub kernel: KernelImage,
    pub kernel_sha256: [u8; 32],
    pub initrd: Option<LoadedModule>,
    pub layout: Layout,
    pub boot_area: Pages,
    /// hv mode only.
    pub reserved: Option<PhysRange>,
    /// hv mode only: the default SMBASE area, if the firmware could reserve it.
    pub smm_area: Option<PhysRange>,
    pub rsdp: Option<u64>,
    /// The ACPI MCFG's ECAM windows (hv mode: read-only in EPT) and the FADT's sleep
    /// registers (hv mode: SLP_EN refused).
    pub platform: crate::discover::platform::Platform,
    /// The CPUs MP services listed, the boot CPU first.
    pub cpus: CpuList,
    /// A page below 1 MiB for AP start-up code (`None`: only the boot CPU can run).
    pub ap_trampoline: Option<u64>,
    /// This EFI image, page-rounded.
    pub image: PhysRange,
}

pub fn run() -> Status {
    serial::init();
    info!("Rampart firmware {}", env!("CARGO_PKG_VERSION"));
    match prepare() {
        Ok(prepared) => crate::handoff::go(prepared),
        Err(error) => fail::boot_error(&error),
    }
}

fn prepare() -> Result<Prepared, BootError> {
    let mut esp = Esp::open()?;
    let config = crate::discover::config::load(&mut esp)?;
    crate::log::set_level(config.log);
    info!(
        "config: mode={} log={} cmdline=\"{}\"",
        mode_name(config.mode),
        config.log.name(),
        config.cmdline.as_str()
    );
    let Measured {
        kernel_file,
        kernel_sha256,
        kernel,
        initrd_file,
    } = read_and_verify(&mut esp)?;
    drop(esp);

    let map = memory::snapshot()?;
    memory::dump(&map);
    let ram_top = memory::ram_top(&map);
    drop(map);

    kernel::load(&kernel, &kernel_file)?;
    drop(kernel_file);
    let initrd = load_initrd(initrd_file)?;
    let layout =
        Layout::new(ram_top).map_err(|e| BootError::new("boot area", Problem::BootArea(e)))?;
    let boot_area = reserve::boot_area(&layout)?;
    debug!("boot area {:#x}-{:#x}", boot_area.start, boot_area.end());
    let (reserved, smm_area) = match config.mode {
        BootMode::Hypervisor => (Some(reserve::hypervisor()?), reserve::smm_default_area()),
        BootMode::Native => (None, None),
    };
    let rsdp = acpi::find_rsdp();
    debug!("ACPI RSDP {:#x}", rsdp.unwrap_or(0));
    let mut cpus = cpus::discover();
    cross_check_madt(&mut cpus, rsdp);
    let platform = crate::discover::platform::discover(rsdp);
    let ap_trampoline = ap_trampoline(&mut cpus);

    if config.mode == BootMode::Hypervisor {
        match rampart_hypervisor::probe() {
            Ok(summary) => info!("VMX: {summary}"),
            Err(error) => fail::stop(Outcome::NoVmx, format_args!("no VMX: {error}")),
        }
    }
    let image = image_range()?;
    debug!("image {:#x}-{:#x}", image.start, image.end());
    Ok(Prepared {
        config,
        kernel,
        kernel_sha256,
        initrd,
        layout,
        boot_area,
        reserved,
        smm_area,
        rsdp,
        platform,
        cpus,
        ap_trampoline,
        image,
    })
}

/// The kernel and the initrd as read from the ESP, measured and verified.
struct Measured {
    kernel_file: Vec<u8>,
    kernel_sha256: [u8; 32],
    kernel: KernelImage,
    initrd_file: Option<Vec<u8>>,
}

/// Reads the kernel and the initrd, hashes them, checks the digests built into BOOTX64.EFI
/// (verified boot) and validates the kernel's ELF.
fn read_and_verify(esp: &mut Esp) -> Result<Measured, BootError> {
    let kernel_file = esp.read_required(KERNEL_PATH)?;
    let kernel_sha256 = sha256(&kernel_file);
    info!(
        "kernel {KERNEL_PATH}: {} bytes sha256={}",
        kernel_file.len(),
        Hex(&kernel_sha256)
    );
    let expected = verify::expected();
    verify::require(
        KERNEL_PATH,
        expected.check_kernel(&kernel_sha256),
        Some(kernel_sha256),
    )?;
    let kernel =
        elf::validate(&kernel_file).map_err(|e| BootError::new(KERNEL_PATH, Problem::Elf(e)))?;
    debug!(
        "kernel entry={:#x} (physical {:#x})",
        kernel.entry, kernel.entry_paddr
    );
    let initrd_file = esp
        .read_optional(INITRD_PATH)?
        .filter(|file| !file.is_empty());
    let initrd_sha256 = initrd_file.as_deref().map(sha256);
    verify::require(
        INITRD_PATH,
        expected.check_initrd(initrd_sha256.as_ref()),
        initrd_sha256,
    )?;
    info!("verified boot: kernel and initrd match the digests built into BOOTX64.EFI");
    Ok(Measured {
        kernel_file,
        kernel_sha256,
        kernel,
        initrd_file,
    })
}

/// Adds the CPUs the ACPI MADT lists but MP services did not (see `rampart_loader::cpus`), and
/// says how the two sources compare; without a MADT (OVMF under Bochs has no RSDP), says so.
fn cross_check_madt(cpus: &mut CpuList, rsdp: Option<u64>) {
    let Some((madt, count)) = rsdp.and_then(crate::discover::madt::apic_ids) else {
        info!("no ACPI MADT: CPUs from {} alone", cpus.source);
        return;
    };
    let merged = rampart_loader::cpus::merge(cpus.ids(), &madt[..count]);
    info!(
        "MADT: {count} CPUs (APIC IDs {}); {} only in the MADT (added), {} only in MP services",
        ApicIds(&madt[..count]),
        merged.madt_only,
        merged.mp_only
    );
    cpus.apic_ids = merged.apic_ids;
    cpus.count = merged.count;
    cpus.dropped += merged.dropped;
}

/// This image's load range, rounded out to pages.
fn image_range() -> Result<PhysRange, BootError> {
    let loaded = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle())
        .map_err(|e| BootError::new("LoadedImage", Problem::Uefi("open", e.status())))?;
    let (base, size) = loaded.info();
    let start = base as u64 & !(PAGE_SIZE - 1);
    let end = align_up(base as u64 + size, PAGE_SIZE).unwrap_or(u64::MAX);
    Ok(PhysRange::new(start, end - start))
}

/// Loads the verified initrd (if there is one) into guest RAM and measures it.
fn load_initrd(file: Option<Vec<u8>>) -> Result<Option<LoadedModule>, BootError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let loaded = module::load(INITRD_PATH, &file)?;
    info!(
        "initrd {INITRD_PATH}: {} bytes sha256={}",
        file.len(),
        Hex(&loaded.sha256)
    );
    Ok(Some(loaded))
}

/// The page for the APs' start-up code below 1 MiB; without one, the boot CPU only. Logs the
/// CPUs the guest gets.
fn ap_trampoline(cpus: &mut CpuList) -> Option<u64> {
    let ap_trampoline = reserve::ap_trampoline();
    if ap_trampoline.is_none() && cpus.count > 1 {
        info!("no free page below 1 MiB for the AP start-up code: the boot CPU only");
        cpus.count = 1;
    }
    info!(
        "CPUs: {} from {} (APIC IDs {}){}",
        cpus.count,
        cpus.source,
        ApicIds(cpus.ids()),
        if cpus.dropped > 0 {
            "; more than the BootInfo holds left parked"
        } else {
            ""
        }
    );
    ap_trampoline
}
