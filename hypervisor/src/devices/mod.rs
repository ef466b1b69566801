//! Devices the guest reaches through I/O ports, mediated so that nothing but the guest CPU's
//! EPT-checked accesses reaches physical memory (DESIGN.md "Devices and interrupts"): which
//! ports exit (`ports`), the PCI configuration filter (`pci`), the port I/O the hypervisor
//! does on the guest's behalf (`pci_access`), and the memory-mapped device pages that stay
//! read-only (`platform`, `ecam`).

pub mod ecam;
pub mod pci;
pub mod pci_access;
pub mod platform;
pub mod ports;
pub mod sweep;

/// What the boot-time PCI sweep found (its DMA register blocks are trapped ports).
pub static DMA_BLOCKS: spin::Once<sweep::Sweep> = spin::Once::new();

/// The trapped DMA register blocks (none before the sweep).
pub fn dma_blocks() -> &'static [ports::PortBlock] {
    DMA_BLOCKS.get().map_or(&[], |sweep| sweep.dma_blocks())
}
