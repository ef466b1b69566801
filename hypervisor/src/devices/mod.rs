//! Devices the guest reaches through I/O ports, mediated so that nothing but the guest CPU's
//! EPT-checked accesses reaches physical memory (hypervisor/DESIGN.md "Devices and interrupts"):
//! which ports exit (`ports`), the PCI configuration filter (`pci`), the port I/O the hypervisor
//! does on the guest's behalf (`pci_access`), and the memory-mapped device pages that stay
//! read-only (`platform`, `ecam`).

pub mod ecam;
pub mod pci;
pub mod pci_access;
#[cfg(test)]
mod pci_port_tests;
pub mod platform;
pub mod ports;
pub mod sleep;
pub mod sweep;

/// What the boot-time PCI sweep found (its DMA register blocks are trapped ports).
pub static DMA_BLOCKS: spin::Once<sweep::Sweep> = spin::Once::new();

/// The port blocks the sweep found that exit (none before the sweep).
pub fn trapped() -> ports::Trapped<'static> {
    DMA_BLOCKS
        .get()
        .map_or(ports::Trapped::default(), |sweep| ports::Trapped {
            dma: &sweep.dma_blocks,
            sleep: sweep.sleep.blocks(),
        })
}

/// What a guest write to `gpa` means for the platform, if it reached a device page EPT keeps
/// read-only: a PCI configuration write through an ECAM window (`dma` or `device-bar`, as the
/// filter's own refusals), or a write to a platform device page.
pub fn write_rule(ecam: &ecam::Windows, gpa: u64) -> Option<rampart_hv_abi::Rule> {
    let platform =
        platform::is_read_only_device(gpa).then_some(rampart_hv_abi::Rule::PlatformDevice);
    ecam::write_rule(ecam, gpa).or(platform)
}
