//! The lazily mapped heap: `brk` only moves the break; a page between the heap's start and
//! the break gets its frame on first touch (the user #PF handler, or a system call copying to
//! or from it). Pure: which faults qualify.

use super::page_table::PAGE_SIZE;

/// `#PF` error code bits (SDM Vol. 3A 4.7, "Page-Fault Exceptions"): P and I/D.
const PF_PRESENT: u64 = 1 << 0;
const PF_INSTRUCTION: u64 = 1 << 4;

/// The heap page holding `address` if it lies in `[heap_start, brk)` (whole pages: the break
/// rounds up), else `None`. `heap_start` is page-aligned (the page after the last segment).
pub fn lazy_page(heap_start: u64, brk: u64, address: u64) -> Option<u64> {
    let end = brk.next_multiple_of(PAGE_SIZE);
    (heap_start..end)
        .contains(&address)
        .then_some(address & !(PAGE_SIZE - 1))
}

/// Whether a user #PF with `error_code` is a first touch the heap may satisfy: a data access
/// to a page that is not present (a protection fault or an instruction fetch never is).
pub fn is_first_touch(error_code: u64) -> bool {
    error_code & (PF_PRESENT | PF_INSTRUCTION) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_between_start_and_break_qualify() {
        let start = 0x40_5000;
        assert_eq!(lazy_page(start, start + 1, 0x40_5fff), Some(0x40_5000));
        assert_eq!(lazy_page(start, start + 0x2000, 0x40_6008), Some(0x40_6000));
        assert_eq!(
            lazy_page(start, start + 0x2000, 0x40_7000),
            None,
            "past the break"
        );
        assert_eq!(
            lazy_page(start, start + 0x2000, 0x40_4fff),
            None,
            "below the heap"
        );
        assert_eq!(lazy_page(start, start, 0x40_5000), None, "empty heap");
    }

    #[test]
    fn only_not_present_data_accesses_are_first_touches() {
        assert!(is_first_touch(0b110), "user write, not present");
        assert!(is_first_touch(0b100), "user read, not present");
        assert!(!is_first_touch(0b111), "protection violation");
        assert!(!is_first_touch(0b10100), "instruction fetch");
    }
}
