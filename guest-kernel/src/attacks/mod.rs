//! The attack suite (cargo feature `attacks`): the threat model's "compromised kernel" tries
//! each attack in a kernel thread of its own and prints one table row per attack, naming the
//! rule from the hypervisor's own audit record. The verdict logic is pure and host-tested.

#[cfg(all(target_os = "none", feature = "attacks"))]
mod bar;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod ept;
#[cfg(any(test, feature = "attacks"))]
pub mod forge;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod grants;
#[cfg(any(test, feature = "attacks"))]
pub mod hole;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod ide_dma;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod ipi;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod list;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod msr;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod pci;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod remap;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod roots;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod run;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod smi_port;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod unchecked_root;
#[cfg(any(test, feature = "attacks"))]
pub mod verdict;
