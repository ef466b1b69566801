//! Which I/O ports exit, and what each exiting port is (I/O bitmaps, SDM Vol. 3C 25.6.4).
//! Every other port reaches the hardware directly, as the guest drives its own devices.

/// COM2's eight registers: the hypervisor's debugger link.
pub const COM2_BASE: u16 = 0x2f8;
const COM2_LAST: u16 = COM2_BASE + 7;
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
    /// A PCI DMA engine's I/O registers (an IDE controller's bus-master block, BAR4): writes
    /// would start DMA, which devices may do even with Bus Master Enable clear (Bochs does).
    BusMaster,
    /// Not an exiting port.
    Other,
}

/// Most PCI DMA register blocks the hypervisor traps.
pub const MAX_DMA_BLOCKS: usize = 4;
/// A trapped block: first port and length.
pub type PortBlock = (u16, u16);

/// Classifies an exiting port; `dma_blocks` are the bus-master register blocks found at boot.
pub fn classify(port: u16, dma_blocks: &[PortBlock]) -> Port {
    if dma_blocks
        .iter()
        .any(|&(start, length)| port >= start && port - start < length)
    {
        return Port::BusMaster;
    }
    match port {
        COM2_BASE..=COM2_LAST => Port::Com2,
        APM_CONTROL => Port::SmiTrigger,
        // DMA1 (0x00-0x0F), page registers (0x81-0x8F, 0x80 is the POST port), DMA2 (0xC0-0xDF).
        0x00..=0x0f | 0x81..=0x8f | 0xc0..=0xdf => Port::LegacyDma,
        PCI_CONFIG_ADDRESS..=0xcfb => Port::PciAddress(port),
        PCI_CONFIG_DATA..=0xcff => Port::PciData((port - PCI_CONFIG_DATA) as u8),
        _ => Port::Other,
    }
}

/// Sets the exit bit of every mediated port in I/O bitmap A (ports 0000H-7FFFH) and B
/// (8000H-FFFFH), one bit each (SDM Vol. 3C 25.6.4).
pub fn build_bitmaps(bitmap_a: &mut [u8; 4096], bitmap_b: &mut [u8; 4096], dma: &[PortBlock]) {
    let bitmaps = [bitmap_a, bitmap_b];
    for port in (0..=u16::MAX).filter(|&port| classify(port, dma) != Port::Other) {
        let index = port & 0x7fff;
        bitmaps[usize::from(port >> 15)][usize::from(index / 8)] |= 1 << (index % 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_covers_the_mediated_ports_only() {
        let mut bitmap = [0u8; 4096];
        let mut high = [0u8; 4096];
        build_bitmaps(&mut bitmap, &mut high, &[(0xc040, 16)]);
        let set = |port: u16| bitmap[usize::from(port / 8)] & (1 << (port % 8)) != 0;
        let set_high = |port: u16| high[usize::from((port & 0x7fff) / 8)] & (1 << (port % 8)) != 0;
        assert!(set_high(0xc040) && set_high(0xc04f) && !set_high(0xc050));
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
        assert_eq!(classify(0xcfe, &[]), Port::PciData(2));
        assert_eq!(classify(0xcf9, &[]), Port::PciAddress(0xcf9));
        assert_eq!(classify(0xb2, &[]), Port::SmiTrigger);
        assert_eq!(classify(0xc048, &[(0xc040, 16)]), Port::BusMaster);
    }
}
