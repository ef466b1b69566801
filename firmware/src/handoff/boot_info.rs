//! Filling the BootInfo from the final memory map and what the firmware loaded.

use rampart_boot_info::{BootInfo, MemoryKind, Module};
use rampart_loader::memory_map::{self, Excluded, UefiRegion};

use crate::fail::{BootError, Problem};
use crate::flow::Prepared;
use crate::log::line;

pub fn fill(
    prepared: &Prepared,
    regions: impl Iterator<Item = UefiRegion>,
    excluded: &[Excluded],
) -> Result<BootInfo, BootError> {
    let mut info = BootInfo::empty();
    let count = memory_map::carve(regions, excluded, &mut info.memory_map)
        .map_err(|e| BootError::new("memory map", Problem::MemoryMap(e)))?;
    info.memory_region_count = count as u64;
    info.boot_mode = prepared.config.mode as u32;
    info.acpi_rsdp = prepared.rsdp.unwrap_or(0);
    info.serial_port = crate::arch::serial::COM1;
    info.log_level = prepared.config.log as u8;
    info.kernel_sha256 = prepared.kernel_sha256;
    (info.kernel_start, info.kernel_end) = prepared.kernel.phys_range();
    if let Some(initrd) = prepared.initrd {
        let mut module = Module {
            start: initrd.start,
            length: initrd.length,
            sha256: initrd.sha256,
            ..Module::EMPTY
        };
        module.name[..6].copy_from_slice(b"initrd");
        info.modules[0] = module;
        info.module_count = 1;
    }
    // Under Rampart the hypervisor rewrites the CPU list with the CPUs it brought up.
    let cpus = prepared.cpus.ids();
    info.apic_ids[..cpus.len()].copy_from_slice(cpus);
    info.cpu_count = cpus.len() as u32;
    if prepared.config.mode == rampart_boot_info::BootMode::Native {
        info.ap_trampoline = prepared.ap_trampoline.unwrap_or(0);
    }
    let cmdline = prepared.config.cmdline.as_bytes();
    info.command_line[..cmdline.len()].copy_from_slice(cmdline);
    info.command_line_len = cmdline.len() as u64;
    for region in info.memory_regions() {
        let kind = region.kind().unwrap_or(MemoryKind::Reserved);
        line(
            rampart_loader::config::LogLevel::Trace,
            format_args!(
                "guest: {:#012x}-{:#012x} {kind:?}",
                region.start,
                region.end()
            ),
        );
    }
    Ok(info)
}
