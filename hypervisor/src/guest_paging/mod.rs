//! The guest's page-table format and its walk (SDM Vol. 3A 5.5 "4-Level Paging"), over any
//! [`walker::PhysicalMemory`]: pure, host-tested. `guest_memory` supplies the real memory.
#![forbid(unsafe_code)]

pub mod walker;
