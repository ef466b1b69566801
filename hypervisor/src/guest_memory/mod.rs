//! The guest's memory seen from the hypervisor: guest-physical access checked against the
//! hypervisor's ranges and EPT (the walk of the guest's own page tables is `guest_paging`'s).
//! Used by the GDB stub, the descriptor-table and page-table exits and vCPU starts.

mod physical;

pub use physical::GuestPhysical;
