//! Hypercalls as types: each [`Request`] names its arguments, decoded once from the VMCALL
//! registers by the hypervisor ([`Request::decode`]) and encoded by the guest
//! ([`Request::encode`]) from the same table, and one result type encoded once
//! ([`encode_result`], [`decode_result`]). A new hypercall is one [`Hypercall`] number, one
//! line in the table below and one handler.

use crate::{Hypercall, HypercallError};

/// The registers of a VMCALL: RAX (the number in, the result out) and the arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub r10: u64,
}

/// What a hypercall returns: a value, or an error the guest sees as a negative RAX.
pub type HypercallResult = Result<u64, HypercallError>;

/// RAX for `result`.
pub fn encode_result(result: HypercallResult) -> u64 {
    match result {
        Ok(value) => value,
        Err(error) => error as i64 as u64,
    }
}

/// `rax` read back: an error if it is one of [`HypercallError`]'s values.
pub fn decode_result(rax: u64) -> HypercallResult {
    match HypercallError::try_from(rax as i64) {
        Ok(error) => Err(error),
        Err(_) => Ok(rax),
    }
}

/// Defines [`Request`] from one table: each hypercall with its arguments and the register
/// that carries each. `decode` and `encode` are both generated from it, so they cannot
/// disagree, and a [`Hypercall`] missing from the table does not compile.
macro_rules! requests {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $register:ident),* })*) => {
        /// A hypercall with its arguments (see [`Hypercall`] for what each does).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Request {
            $($(#[$doc])* $name { $($field: u64),* },)*
        }

        impl Request {
            /// Decodes the registers at a VMCALL: `NotSupported` for an unknown number.
            pub fn decode(registers: &Registers) -> Result<Self, HypercallError> {
                let number = Hypercall::try_from(registers.rax)
                    .map_err(|_| HypercallError::NotSupported)?;
                Ok(match number {
                    $(Hypercall::$name => Self::$name { $($field: registers.$register),* },)*
                })
            }

            /// The registers that make this request (unused argument registers 0).
            pub fn encode(&self) -> Registers {
                let mut registers = Registers::default();
                match *self {
                    $(Self::$name { $($field),* } => {
                        registers.rax = Hypercall::$name as u64;
                        $(registers.$register = $field;)*
                    })*
                }
                registers
            }

            /// The hypercall's number.
            pub fn hypercall(&self) -> Hypercall {
                match self {
                    $(Self::$name { .. } => Hypercall::$name,)*
                }
            }
        }
    };
}

requests! {
    Version {}
    LogExitStats {}
    Shutdown {}
    /// `reason`: a basic exit reason, or [`crate::EXIT_COUNT_TOTAL`].
    ExitCount { reason: rdi }
    /// `keep`: the [`crate::Access`] rights to keep.
    ProtectRange { gpa: rdi, length: rsi, keep: rdx }
    GrantExecute { gpa: rdi, length: rsi, initrd_offset: rdx }
    RevokeExecute { gpa: rdi, length: rsi }
    LockSyscallMsrs {}
    /// `buffer`: GPA of `capacity` [`crate::AuditRecord`]s; `first`: the first sequence number.
    ReadAuditLog { buffer: rdi, capacity: rsi, first: rdx }
    AuditCount {}
    ExitCycles {}
    /// `flags`: [`crate::DescriptorLock`] bits.
    LockDescriptorTables { flags: rdi }
    StartVcpu { apic_id: rdi, rip: rsi, rsp: rdx, cr3: r10 }
    /// `table`: GPA of `count` [`crate::CpuRoots`].
    LockKernelMappings { window_start: rdi, window_length: rsi, table: rdx, count: r10 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registers(rax: u64) -> Registers {
        Registers {
            rax,
            rdi: 1,
            rsi: 2,
            rdx: 3,
            r10: 4,
        }
    }

    #[test]
    fn every_number_decodes_and_encodes_back() {
        for number in 0..=13 {
            let request = Request::decode(&registers(number)).unwrap();
            assert_eq!(request.hypercall() as u64, number);
            let encoded = request.encode();
            assert_eq!(encoded.rax, number);
            assert_eq!(Request::decode(&encoded), Ok(request));
        }
    }

    #[test]
    fn arguments_come_from_their_registers() {
        let start = Request::decode(&registers(Hypercall::StartVcpu as u64));
        assert_eq!(
            start,
            Ok(Request::StartVcpu {
                apic_id: 1,
                rip: 2,
                rsp: 3,
                cr3: 4
            })
        );
        let count = Request::decode(&registers(Hypercall::ExitCount as u64));
        assert_eq!(count, Ok(Request::ExitCount { reason: 1 }));
        let grant = Request::GrantExecute {
            gpa: 9,
            length: 8,
            initrd_offset: 7,
        }
        .encode();
        assert_eq!((grant.rdi, grant.rsi, grant.rdx, grant.r10), (9, 8, 7, 0));
    }

    #[test]
    fn unknown_numbers_are_not_supported() {
        for number in [14, 0xdead, u64::MAX] {
            assert_eq!(
                Request::decode(&registers(number)),
                Err(HypercallError::NotSupported)
            );
        }
    }

    #[test]
    fn results_round_trip() {
        for result in [Ok(0), Ok(42), Ok(u64::MAX / 2), Err(HypercallError::Denied)] {
            assert_eq!(decode_result(encode_result(result)), result);
        }
        assert_eq!(encode_result(Err(HypercallError::NotSupported)), u64::MAX);
        // A large value that is no error code reads back as a value.
        assert_eq!(decode_result(-100i64 as u64), Ok(-100i64 as u64));
    }
}
