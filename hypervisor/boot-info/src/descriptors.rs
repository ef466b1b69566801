//! x86-64 segment descriptors used by every Rampart GDT (the boot GDT of the entry contract,
//! the guest kernel's own, the hypervisor's host GDT): one encoding, tested once
//! (SDM Vol. 3A 3.4.5 "Segment Descriptors", 8.2.3 "TSS Descriptor in 64-bit mode").

/// Flat 64-bit code, DPL0: access 0x9B (present, code, execute/read, accessed), L=1, G=1.
pub const KERNEL_CODE64: u64 = 0x00af_9b00_0000_ffff;
/// Flat data, DPL0: access 0x93 (present, data, read/write, accessed), D/B=1, G=1.
pub const KERNEL_DATA: u64 = 0x00cf_9300_0000_ffff;
/// System-descriptor type 9 (available 64-bit TSS) with the present bit, bits 47:40.
const TSS_AVAILABLE_PRESENT: u64 = 0x89;

/// The two GDT slots of a 64-bit TSS descriptor at `base` with byte-granular `limit`.
pub const fn tss_descriptor(base: u64, limit: u32) -> [u64; 2] {
    let limit = limit as u64;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (TSS_AVAILABLE_PRESENT << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tss_descriptor_splits_base_and_limit() {
        let [low, high] = tss_descriptor(0x1234_5678_9abc_def0, 0x1_2345);
        assert_eq!(low & 0xffff, 0x2345, "limit 15:0");
        assert_eq!((low >> 16) & 0xff_ffff, 0xbc_def0, "base 23:0");
        assert_eq!((low >> 40) & 0xff, 0x89, "type 9, present");
        assert_eq!((low >> 48) & 0xf, 0x1, "limit 19:16");
        assert_eq!(low >> 56, 0x9a, "base 31:24");
        assert_eq!(high, 0x1234_5678, "base 63:32");
    }

    #[test]
    fn flat_segments_are_present_and_accessed() {
        for descriptor in [KERNEL_CODE64, KERNEL_DATA] {
            assert_ne!(descriptor & (1 << 47), 0, "present");
            assert_ne!(descriptor & (1 << 40), 0, "accessed");
        }
        assert_ne!(KERNEL_CODE64 & (1 << 53), 0, "64-bit code: L=1");
    }
}
