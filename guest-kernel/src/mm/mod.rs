//! Memory management. Pure: the page-table format, the kernel's identity map and the boot
//! memory map summary; loading CR3 and the control bits is `arch::paging`.

pub mod identity_map;
#[cfg(test)]
mod identity_map_tests;
pub mod memory_map;
pub mod page_table;
