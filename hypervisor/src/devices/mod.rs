//! Devices the guest reaches through I/O ports, mediated so that nothing but the guest CPU's
//! EPT-checked accesses reaches physical memory (DESIGN.md "Devices and interrupts"): which
//! ports exit (`ports`), the PCI configuration filter (`pci`), and the port I/O the hypervisor
//! does on the guest's behalf (`pci_access`).

pub mod pci;
pub mod pci_access;
pub mod platform;
pub mod ports;
