//! Which I/O ports exit, and what each exiting port is (I/O bitmaps, SDM Vol. 3C 25.6.4).
//! Every other port reaches the hardware directly, as the guest drives its own devices.

/// COM2's eight registers: the hypervisor's debugger link.
pub const COM2_BASE: u16 = 0x2f8;
pub const COM2_PORTS: u16 = 8;
/// APM control (ICH/PIIX4): a write raises an SMI.
pub const APM_CONTROL: u16 = 0xb2;
/// PCI configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): address and data ports.
pub const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
pub const PCI_CONFIG_DATA: u16 = 0xcfc;
/// Reset control (ICH/PIIX: byte port inside the address dword).
pub const RESET_CONTROL: u16 = 0xcf9;

/// What an exiting port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The hypervisor's COM2: absent for the guest.
    Com2,
    /// A write raises an SMI: refused.
    SmiTrigger,
    /// The 8237 DMA controllers and their page registers (ISA DMA into any memory below
    /// 16 MiB): absent for the guest.
    LegacyDma,
    /// PCI configuration address (0xCF8-0xCFB).
    PciAddress(u16),
    /// PCI configuration data (0xCFC-0xCFF): byte offset 0-3.
    PciData(u8),
    /// Not an exiting port.
    Other,
}

/// Classifies an exiting port.
pub fn classify(port: u16) -> Port {
    match port {
        COM2_BASE..=0x2ff => Port::Com2,
        APM_CONTROL => Port::SmiTrigger,
        // DMA1 (0x00-0x0F), page registers (0x81-0x8F, 0x80 is the POST port), DMA2 (0xC0-0xDF).
        0x00..=0x0f | 0x81..=0x8f | 0xc0..=0xdf => Port::LegacyDma,
        PCI_CONFIG_ADDRESS..=0xcfb => Port::PciAddress(port),
        PCI_CONFIG_DATA..=0xcff => Port::PciData((port - PCI_CONFIG_DATA) as u8),
        _ => Port::Other,
    }
}

/// Sets the exit bit of every mediated port in I/O bitmap A (ports 0000H-7FFFH, one bit each).
pub fn build_bitmap_a(bitmap_a: &mut [u8; 4096]) {
    for port in 0..=0x7fffu16 {
        if classify(port) != Port::Other {
            bitmap_a[usize::from(port / 8)] |= 1 << (port % 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_covers_the_mediated_ports_only() {
        let mut bitmap = [0u8; 4096];
        build_bitmap_a(&mut bitmap);
        let set = |port: u16| bitmap[usize::from(port / 8)] & (1 << (port % 8)) != 0;
        for port in [
            0x2f8, 0x2ff, 0xb2, 0x00, 0x0f, 0x87, 0xc0, 0xdf, 0xcf8, 0xcf9, 0xcfc, 0xcff,
        ] {
            assert!(set(port), "{port:#x} must exit");
        }
        for port in [
            0x3f8, 0x3fd, 0x80, 0x40, 0x43, 0x61, 0x20, 0x21, 0xb3, 0x1f0,
        ] {
            assert!(!set(port), "{port:#x} is the guest's");
        }
    }

    #[test]
    fn classification_names_the_register() {
        assert_eq!(classify(0xcfe), Port::PciData(2));
        assert_eq!(classify(0xcf9), Port::PciAddress(0xcf9));
        assert_eq!(classify(0xb2), Port::SmiTrigger);
    }
}
