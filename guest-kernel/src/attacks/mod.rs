//! The attack suite (cargo feature `attacks`): the threat model's "compromised kernel" tries
//! each attack in a kernel thread of its own and prints one table row per attack, naming the
//! rule from the hypervisor's own audit record. The verdict logic is pure and host-tested.

#[cfg(any(test, feature = "attacks"))]
pub mod hole;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod ipi;
#[cfg(all(target_os = "none", feature = "attacks"))]
mod list;
#[cfg(all(target_os = "none", feature = "attacks"))]
pub mod run;
#[cfg(any(test, feature = "attacks"))]
pub mod verdict;
