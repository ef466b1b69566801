//! Exit-qualification decoding (SDM Vol. 3C 28.2.1, Tables 28-3 and 28-7).
#![forbid(unsafe_code)]

use crate::ept::entry::Permissions;
use core::fmt;

/// EPT-violation qualification (Table 28-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EptViolation(pub u64);

impl EptViolation {
    pub fn write(&self) -> bool {
        self.0 & (1 << 1) != 0
    }
    pub fn fetch(&self) -> bool {
        self.0 & (1 << 2) != 0
    }
    /// The EPT permissions of the faulting GPA (bits 5:3: readable, writable, executable).
    pub fn allowed(&self) -> u64 {
        (self.0 >> 3) & 0b111
    }
    /// The EPT rights of the faulting GPA: bits 5:3, and with mode-based execute control bit 6
    /// (user-mode execute, SDM Vol. 3C 28.2.1 Table 28-7; undefined without it).
    pub fn allowed_rights(&self, mode_based_execute: bool) -> Permissions {
        const USER_EXECUTE_ALLOWED: u64 = 1 << 6;
        let mut rights = Permissions::from_entry(self.allowed());
        if mode_based_execute && self.0 & USER_EXECUTE_ALLOWED != 0 {
            rights |= Permissions::USER_EXECUTE;
        }
        rights
    }
    /// Bit 9 (with bits 7 and 8 set, where the CPU gives advanced EPT-violation information):
    /// the linear address is a user-mode address, whose fetches need user-mode execute under
    /// mode-based execute control. 0 where the CPU does not say.
    pub fn user_mode_address(&self) -> bool {
        const TRANSLATION: u64 = (1 << 7) | (1 << 8);
        self.0 & TRANSLATION == TRANSLATION && self.0 & (1 << 9) != 0
    }
    /// Bit 7: the guest-linear-address field is valid.
    pub fn linear_address_valid(&self) -> bool {
        self.0 & (1 << 7) != 0
    }
}

impl fmt::Display for EptViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = if self.fetch() {
            "execute"
        } else if self.write() {
            "write"
        } else {
            "read"
        };
        let allowed = Permissions::from_entry(self.allowed());
        write!(f, "{access} (page allows {allowed:?})")
    }
}

/// Control-register-access qualification (Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrAccess(pub u64);

/// The access type of a CR-access exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrAccessType {
    MovToCr,
    MovFromCr,
    Clts,
    Lmsw,
}

impl CrAccess {
    pub fn control_register(&self) -> u8 {
        (self.0 & 0xf) as u8
    }
    pub fn access_type(&self) -> CrAccessType {
        match (self.0 >> 4) & 0b11 {
            0 => CrAccessType::MovToCr,
            1 => CrAccessType::MovFromCr,
            2 => CrAccessType::Clts,
            _ => CrAccessType::Lmsw,
        }
    }
    /// General-purpose register operand, numbered as in the ModRM encoding (0 = RAX .. 15 = R15).
    pub fn gpr(&self) -> u8 {
        ((self.0 >> 8) & 0xf) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ept_violation_write_to_read_execute_page() {
        // Write access (bit 1), page readable and executable (bits 3 and 5), GLA valid (bit 7).
        let q = EptViolation(0b1010_1010);
        assert!(q.write() && q.0 & 1 == 0 && !q.fetch());
        assert_eq!(q.allowed(), 0b101);
        assert!(q.linear_address_valid());
        assert_eq!(format!("{q}"), "write (page allows r-x)");
    }

    #[test]
    fn ept_violation_to_absent_page() {
        assert_eq!(format!("{}", EptViolation(0b001)), "read (page allows ---)");
    }

    #[test]
    fn mov_to_cr4_from_rcx() {
        let q = CrAccess(4 | (1 << 8));
        assert_eq!(q.control_register(), 4);
        assert_eq!(q.access_type(), CrAccessType::MovToCr);
        assert_eq!(q.gpr(), 1);
    }
}
