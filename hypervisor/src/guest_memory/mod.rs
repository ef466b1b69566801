//! The guest's memory seen from the hypervisor: guest-physical access checked against the
//! hypervisor's ranges and EPT (`physical`), and every read, comparison and write of guest RAM
//! at run time (`bytes`: the exits, the GDB stub and the policy's measured-code comparison go
//! through [`GuestBytes`]). The walk of the guest's own page tables is `guest_paging`'s. The
//! boot path's reads of the hand-off block, the initrd and the SMM entry page, before any guest
//! code runs, are `boot`'s and `smm`'s.

mod bytes;
mod physical;

pub use bytes::{Gpa, GuestBytes};
pub use physical::GuestPhysical;
