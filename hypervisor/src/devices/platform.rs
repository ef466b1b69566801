//! Platform interrupt sources in MMIO that could deliver what the ICR filter refuses: an
//! IOAPIC redirection entry or an HPET FSB route can send SMI, INIT or NMI (ICH9 / IOAPIC
//! datasheets; 82093AA delivery modes). Without write emulation (x86 instruction decoding of
//! MMIO writes), their pages are read-only in EPT: the guest may read them, and a write is a
//! #VE with audit rule `platform-device`. Rampart's guest kernel uses neither (LAPIC timer,
//! PIT calibration); a guest that needs IOAPIC interrupts is not supported yet.
#![forbid(unsafe_code)]

/// The standard IOAPIC and HPET pages (PC platform defaults; ACPI MADT/HPET tables may name
/// others, which are then not covered: the firmware does not pass them yet).
pub const READ_ONLY_PAGES: [u64; 2] = [0xfec0_0000, 0xfed0_0000];
const PAGE: u64 = 4096;

/// True if `gpa` lies in one of the [`READ_ONLY_PAGES`].
pub fn is_read_only_device(gpa: u64) -> bool {
    READ_ONLY_PAGES
        .iter()
        .any(|&page| (page..page + PAGE).contains(&gpa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_ioapic_and_hpet_pages_only() {
        assert!(is_read_only_device(0xfec0_0010));
        assert!(is_read_only_device(0xfed0_00f0));
        assert!(
            !is_read_only_device(0xfee0_0000),
            "the LAPIC page is the CPU's"
        );
        assert!(!is_read_only_device(0xfec0_1000));
    }
}
