//! The kernel's virtual address-space layout (every process shares the upper half).
//!
//! - `0 .. USER_TOP`: the current process (program segments, heap, stack).
//! - `DIRECT_MAP_BASE ..`: all physical memory (2 MiB pages, NX; MMIO uncacheable).
//! - `KERNEL_STACKS_BASE ..`: per-process kernel stacks, each above an unmapped guard page.
//! - `KERNEL_VIRT_OFFSET + physical`: the kernel image (linker.ld).

/// Where the linker places the kernel: its physical address plus this (linker.ld).
pub const KERNEL_VIRT_OFFSET: u64 = 0xFFFF_FFFF_8000_0000;
/// Physical memory is mapped here in full.
pub const DIRECT_MAP_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Kernel stacks of processes live in this 512 GiB slot (PML4 entry 510).
pub const KERNEL_STACKS_BASE: u64 = 0xFFFF_FF00_0000_0000;
/// First PML4 entry of the kernel half; entries from here on are shared by every process.
pub const KERNEL_PML4_FIRST: usize = 256;
/// End (exclusive) of user space: the lower canonical half.
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;
/// Lowest address a program may map (page 0 stays unmapped to catch null pointers).
pub const USER_BOTTOM: u64 = 0x1000;
/// The user stack ends here (exclusive); RSP starts at this address, 16-byte aligned.
pub const USER_STACK_TOP: u64 = 0x0000_7FFF_FFFF_F000;
/// Bytes of user stack.
pub const USER_STACK_SIZE: u64 = 64 * 1024;
/// Bytes of each process's kernel stack (plus one guard page below it).
pub const KERNEL_STACK_SIZE: u64 = 16 * 1024;
/// The stack window: `KERNEL_STACKS_BASE ..` this many bytes (2 MiB aligned), whose page
/// tables the kernel builds at boot (`kernel_map`) so that mapping a stack writes leaf entries
/// only; under `pagetables = locked` they are the only kernel-half tables left writable.
pub const KERNEL_STACK_WINDOW: u64 = 20 << 20;
/// Kernel stack slots that fit in the window below its last page ([`SPARE_KERNEL_PAGE`]).
pub const MAX_KERNEL_STACKS: u64 = (KERNEL_STACK_WINDOW - 4096) / (KERNEL_STACK_SIZE + 4096);
/// The window's last page, above every stack slot: the attack suite's alias page (a leaf in a
/// pre-built table, like a stack page).
#[cfg_attr(not(feature = "attacks"), allow(dead_code))]
pub const SPARE_KERNEL_PAGE: u64 = KERNEL_STACKS_BASE + KERNEL_STACK_WINDOW - 4096;

const _: () = assert!(USER_STACK_TOP < USER_TOP);
const _: () = assert!(KERNEL_STACK_WINDOW.is_multiple_of(2 << 20));
const _: () = assert!(kernel_stack_bottom(MAX_KERNEL_STACKS) <= SPARE_KERNEL_PAGE + 4096);

/// The direct-map address of physical `address`.
pub const fn phys_to_virt(address: u64) -> u64 {
    DIRECT_MAP_BASE + address
}

/// The physical address of a direct-map address.
#[cfg_attr(target_os = "none", allow(dead_code))]
pub const fn virt_to_phys(address: u64) -> u64 {
    address - DIRECT_MAP_BASE
}

/// Lowest address of the kernel stack slot `slot` (its guard page is just below).
pub const fn kernel_stack_bottom(slot: u64) -> u64 {
    KERNEL_STACKS_BASE + slot * (KERNEL_STACK_SIZE + 4096) + 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_do_not_overlap() {
        assert!(phys_to_virt(64 << 30) < KERNEL_STACKS_BASE);
        assert!(kernel_stack_bottom(1 << 20) < KERNEL_VIRT_OFFSET);
        assert_eq!(virt_to_phys(phys_to_virt(0x1234)), 0x1234);
        assert_eq!(kernel_stack_bottom(1) - kernel_stack_bottom(0), 20 * 1024);
        let last_top = kernel_stack_bottom(MAX_KERNEL_STACKS - 1) + KERNEL_STACK_SIZE;
        assert!(last_top <= SPARE_KERNEL_PAGE);
        assert_eq!(MAX_KERNEL_STACKS, 1023);
    }
}
