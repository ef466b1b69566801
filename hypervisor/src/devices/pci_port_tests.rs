//! Every guest access shape to the PCI configuration ports against a model of the platform
//! (issue: an unaligned dword at 0xCFD was reshaped into a write of the Command register).
//! The hypervisor either refuses an access or makes the device see exactly the bytes the
//! guest's access would have written natively, less Bus Master Enable.

use super::pci::{self, ConfigWrite, DeviceFacts, Verdict};
use super::pci_access::data_port_io;
use super::ports::{classify_access, Port, Trapped, PCI_CONFIG_DATA};
use proptest::prelude::*;

/// The platform (PCI Local Bus 3.0, 3.2.2.3.2): with CONFIG_ADDRESS selecting dword
/// `register`, an I/O write whose bytes all lie in the data dword 0xCFC-0xCFF writes them at
/// `register + (port - 0xCFC)`, one configuration byte per byte enable. A write that touches
/// the data dword and any port outside it has no defined meaning (`None`); one that touches
/// no data port writes no configuration byte.
fn platform(register: u8, port: u16, size: u8, value: u32) -> Option<Vec<(u8, u8)>> {
    let bytes: Vec<u16> = (0..u16::from(size)).map(|i| port.wrapping_add(i)).collect();
    let data = |p: &u16| (PCI_CONFIG_DATA..PCI_CONFIG_DATA + 4).contains(p);
    match bytes.iter().filter(|p| data(p)).count() {
        0 => Some(Vec::new()),
        n if n == bytes.len() => Some(
            bytes
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        register + (*p - PCI_CONFIG_DATA) as u8,
                        (value >> (8 * i)) as u8,
                    )
                })
                .collect(),
        ),
        _ => None,
    }
}

/// What reaches the device when the hypervisor handles the guest's write: `None` if refused.
fn hypervisor(register: u8, port: u16, size: u8, value: u32) -> Option<Vec<(u8, u8)>> {
    let facts = DeviceFacts {
        is_endpoint: true,
        current_bar: 0xfebf_0000,
        upper_half_of_64bit: false,
        bar_size: 0x1000,
        power_management: false,
    };
    match classify_access(port, size, &Trapped::default()) {
        Port::PciData(offset) => {
            let write = ConfigWrite {
                offset: register + offset,
                size,
                value,
            };
            let forwarded = match pci::decide(write, facts, (0xe000_0000, 0xfec0_0000)) {
                Verdict::Forward(w) | Verdict::Trimmed(w, _) => w,
                Verdict::Refuse(_) => return None,
            };
            // The port I/O the hypervisor then does, seen by the same platform.
            let (io_port, io_size, io_value) = data_port_io(forwarded)?;
            platform(register, io_port, io_size, io_value)
        }
        Port::Straddling => None,
        // The address port selects, the reset port resets: no configuration byte is written.
        _ => Some(Vec::new()),
    }
}

/// The platform's bytes with Bus Master Enable (Command bit 2) cleared: what the filter allows.
fn without_bus_master(bytes: Vec<(u8, u8)>) -> Vec<(u8, u8)> {
    bytes
        .into_iter()
        .map(|(at, b)| {
            if at == pci::COMMAND {
                (at, b & !(pci::COMMAND_BUS_MASTER as u8))
            } else {
                (at, b)
            }
        })
        .collect()
}

fn check(register: u8, port: u16, size: u8, value: u32) -> Result<(), TestCaseError> {
    let native = platform(register, port, size, value);
    match hypervisor(register, port, size, value) {
        // Refusing is always allowed (and the only answer where the platform has none).
        None => {}
        Some(seen) => {
            let native = native.ok_or_else(|| {
                TestCaseError::fail(format!("{port:#x}/{size} forwarded though undefined"))
            })?;
            prop_assert_eq!(
                seen,
                without_bus_master(native),
                "register {:#x}, port {:#x}, size {}, value {:#x}",
                register,
                port,
                size,
                value
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn every_access_shape_is_refused_or_exact(
        register in prop::sample::select(vec![0x00u8, 0x04, 0x08, 0x10, 0x3c]),
        port in 0xcf5u16..=0xcff,
        size in prop::sample::select(vec![1u8, 2, 4]),
        value in any::<u32>(),
    ) {
        check(register, port, size, value)?;
    }
}

#[test]
fn the_reviews_write_is_refused() {
    // `out 0xCFD, eax` with 0x5 and the Command register selected: natively bytes 5-7 and
    // port 0xD00; the hypervisor used to write 0x5 to Command/Status (bus master on).
    assert_eq!(hypervisor(0x04, 0xcfd, 4, 0x5), None);
    assert_eq!(
        classify_access(0xcfd, 4, &Trapped::default()),
        Port::Straddling
    );
}

#[test]
fn every_shape_with_bus_master_values() {
    for register in [0x00u8, 0x04] {
        for port in 0xcf5u16..=0xcff {
            for size in [1u8, 2, 4] {
                for value in [0, 0x4, 0x5, 0x404, 0x0004_0000, 0x0400_0000, u32::MAX] {
                    check(register, port, size, value).unwrap();
                }
            }
        }
    }
}
