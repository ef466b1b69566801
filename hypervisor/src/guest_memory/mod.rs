//! The guest's memory seen from the hypervisor: guest-physical access checked against the
//! hypervisor's ranges and EPT, and the walk of the guest's own page tables. Used by the GDB
//! stub and by the descriptor-table exits.

mod physical;
pub mod walker;

pub use physical::GuestPhysical;
