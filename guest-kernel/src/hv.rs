//! Which hypervisor, if any, runs this kernel: decoded from CPUID values (pure; the CPUID
//! instructions are issued by `arch::hypercall::detect`).

use core::fmt;

/// The outcome of hypervisor detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Bare metal (CPUID.1:ECX bit 31 clear).
    Native,
    /// The Rampart hypervisor: hypercalls are available.
    Rampart,
    /// Some other hypervisor (KVM, TCG, ...) with this 12-byte vendor signature.
    Unknown([u8; 12]),
}

impl Detection {
    /// Classifies the EBX, ECX, EDX of leaf 0x40000000, `None` when CPUID.1:ECX's hypervisor
    /// bit is clear (that leaf is then not read: on bare metal it aliases the highest basic
    /// leaf).
    pub fn classify(vendor: Option<(u32, u32, u32)>) -> Self {
        let Some((ebx, ecx, edx)) = vendor else {
            return Self::Native;
        };
        if rampart_hv_abi::is_rampart_signature(ebx, ecx, edx) {
            return Self::Rampart;
        }
        let mut signature = [0u8; 12];
        signature[0..4].copy_from_slice(&ebx.to_le_bytes());
        signature[4..8].copy_from_slice(&ecx.to_le_bytes());
        signature[8..12].copy_from_slice(&edx.to_le_bytes());
        Self::Unknown(signature)
    }

    /// The `hypervisor=` value of the result line.
    pub fn result_name(&self) -> &'static str {
        match self {
            Self::Rampart => "rampart",
            Self::Native | Self::Unknown(_) => "none",
        }
    }
}

/// The kernel's `hypervisor: ...` report line (after the prefix).
impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Native => f.write_str("none (native)"),
            Self::Rampart => {
                f.write_str("Rampart detected via CPUID 0x40000000 (running in VMX non-root)")
            }
            Self::Unknown(signature) => {
                f.write_str("unknown '")?;
                for &byte in signature {
                    let printable = byte.is_ascii_graphic() || byte == b' ';
                    f.write_fmt(format_args!(
                        "{}",
                        if printable { byte as char } else { '.' }
                    ))?;
                }
                f.write_str("'")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_vendor_leaf_is_native() {
        let detected = Detection::classify(None);
        assert_eq!(detected, Detection::Native);
        assert_eq!(detected.to_string(), "none (native)");
    }

    #[test]
    fn rampart_signature_is_recognised() {
        let detected = Detection::classify(Some(rampart_hv_abi::signature_registers()));
        assert_eq!(detected, Detection::Rampart);
        assert_eq!(detected.result_name(), "rampart");
    }

    #[test]
    fn other_hypervisors_are_named() {
        let kvm = (
            u32::from_le_bytes(*b"KVMK"),
            u32::from_le_bytes(*b"VMKV"),
            u32::from_le_bytes(*b"M\0\0\0"),
        );
        let detected = Detection::classify(Some(kvm));
        assert_eq!(detected.to_string(), "unknown 'KVMKVMKVM...'");
        assert_eq!(detected.result_name(), "none");
    }
}
