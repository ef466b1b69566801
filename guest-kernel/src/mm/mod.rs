//! Memory management. Pure: the address-space layout, page-table format and walks, the
//! kernel's own tables, the boot memory map and frame carving; touching memory and CR3 is
//! `arch::paging` and `arch::phys`.

pub mod address_space;
pub mod cpu_roots;
pub mod frames;
pub mod heap;
pub mod kernel_map;
#[cfg(test)]
mod kernel_map_tests;
pub mod kpti;
pub mod layout;
pub mod memory_map;
pub mod page_table;
pub mod pcid;
pub mod user_range;
