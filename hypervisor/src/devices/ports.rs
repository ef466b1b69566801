//! Which I/O ports exit, and what each exiting port is (I/O bitmaps, SDM Vol. 3C 25.6.4).
//! Every other port reaches the hardware directly, as the guest drives its own devices.
#![forbid(unsafe_code)]

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
    /// An ACPI sleep-control register (PM1 control, sleep control): writes that set SLP_EN
    /// are refused (`devices::sleep`), the rest go through.
    SleepControl(PortBlock),
    /// An access whose bytes do not all belong to one mediated register: it spans a mediated
    /// port and another port, or crosses the PCI data dword (see [`classify_access`]).
    Straddling,
    /// Not an exiting port.
    Other,
}

/// Most PCI DMA register blocks the hypervisor traps.
pub const MAX_DMA_BLOCKS: usize = 4;
pub use crate::handoff::PortBlock;

/// The port blocks found at boot that exit besides the fixed ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trapped<'a> {
    /// Bus-master register blocks of PCI DMA engines.
    pub dma: &'a [PortBlock],
    /// ACPI sleep-control registers.
    pub sleep: &'a [PortBlock],
}

fn block_of(port: u16, blocks: &[PortBlock]) -> Option<PortBlock> {
    blocks
        .iter()
        .copied()
        .find(|&(start, length)| port >= start && port - start < length)
}

/// Classifies an exiting port.
pub fn classify(port: u16, trapped: &Trapped) -> Port {
    if block_of(port, trapped.dma).is_some() {
        return Port::BusMaster;
    }
    if let Some(block) = block_of(port, trapped.sleep) {
        return Port::SleepControl(block);
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

/// Classifies an I/O access of `size` bytes from `port` by every byte it touches. An I/O
/// instruction exits if any of its bytes is a mediated port (SDM Vol. 3C 26.1.3, "I/O
/// bitmaps"), and the exit names only the first: `out 0xCFD, eax` touches 0xCFD-0xD00. Such an
/// access is forwarded only if all its bytes are one register's; anything else is
/// [`Port::Straddling`]: the PCI data port is a dword whose byte enables are the access's
/// bytes (PCI Local Bus 3.0, 3.2.2.3.2), and an access that runs past it (or into it from
/// the address port) has no defined meaning on the platform, so it must be refused, never
/// reshaped into one that has.
pub fn classify_access(port: u16, size: u8, trapped: &Trapped) -> Port {
    let first = classify(port, trapped);
    let Some(last) = port.checked_add(u16::from(size.max(1)) - 1) else {
        return Port::Straddling;
    };
    let same_register = |other: Port| match (first, other) {
        (Port::PciData(_), Port::PciData(_)) | (Port::PciAddress(_), Port::PciAddress(_)) => true,
        (Port::SleepControl(a), Port::SleepControl(b)) => a == b,
        (a, b) => core::mem::discriminant(&a) == core::mem::discriminant(&b),
    };
    if (port..=last).all(|p| same_register(classify(p, trapped))) {
        first
    } else {
        Port::Straddling
    }
}

/// Sets the exit bit of every mediated port in I/O bitmap A (ports 0000H-7FFFH) and B
/// (8000H-FFFFH), one bit each (SDM Vol. 3C 25.6.4).
pub fn build_bitmaps(bitmap_a: &mut [u8; 4096], bitmap_b: &mut [u8; 4096], trapped: &Trapped) {
    let bitmaps = [bitmap_a, bitmap_b];
    for port in (0..=u16::MAX).filter(|&port| classify(port, trapped) != Port::Other) {
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
        let trapped = Trapped {
            dma: &[(0xc040, 16)],
            sleep: &[(0xb004, 2)],
        };
        build_bitmaps(&mut bitmap, &mut high, &trapped);
        let set = |port: u16| bitmap[usize::from(port / 8)] & (1 << (port % 8)) != 0;
        let set_high = |port: u16| high[usize::from((port & 0x7fff) / 8)] & (1 << (port % 8)) != 0;
        assert!(set_high(0xc040) && set_high(0xc04f) && !set_high(0xc050));
        assert!(set_high(0xb004) && set_high(0xb005) && !set_high(0xb006) && !set_high(0xb003));
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
    fn accesses_past_a_mediated_register_straddle() {
        let dma = Trapped {
            dma: &[(0xc040, 16)],
            sleep: &[(0xb004, 2)],
        };
        assert_eq!(
            classify_access(0xb004, 2, &dma),
            Port::SleepControl((0xb004, 2))
        );
        assert_eq!(
            classify_access(0xb004, 4, &dma),
            Port::Straddling,
            "past PM1 control"
        );
        assert_eq!(classify_access(0xcfc, 4, &dma), Port::PciData(0));
        assert_eq!(classify_access(0xcfe, 2, &dma), Port::PciData(2));
        assert_eq!(
            classify_access(0xcfd, 4, &dma),
            Port::Straddling,
            "runs to 0xD00"
        );
        assert_eq!(classify_access(0xcff, 2, &dma), Port::Straddling);
        assert_eq!(
            classify_access(0xcfa, 4, &dma),
            Port::Straddling,
            "address into data"
        );
        assert_eq!(
            classify_access(0xcf6, 4, &dma),
            Port::Straddling,
            "into the address port"
        );
        assert_eq!(classify_access(0xcf8, 4, &dma), Port::PciAddress(0xcf8));
        assert_eq!(
            classify_access(0xc04e, 4, &dma),
            Port::Straddling,
            "past a DMA block"
        );
        assert_eq!(
            classify_access(0xb1, 2, &dma),
            Port::Straddling,
            "into the APM port"
        );
        assert_eq!(classify_access(0xffff, 2, &dma), Port::Straddling, "wraps");
        assert_eq!(classify_access(0x3f8, 4, &dma), Port::Other);
    }

    #[test]
    fn classification_names_the_register() {
        let none = Trapped::default();
        assert_eq!(classify(0xcfe, &none), Port::PciData(2));
        assert_eq!(classify(0xcf9, &none), Port::PciAddress(0xcf9));
        assert_eq!(classify(0xb2, &none), Port::SmiTrigger);
        let dma = Trapped {
            dma: &[(0xc040, 16)],
            sleep: &[],
        };
        assert_eq!(classify(0xc048, &dma), Port::BusMaster);
    }
}
