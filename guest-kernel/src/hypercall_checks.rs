//! Boot-time check that the hypervisor rejects malformed hypercalls with the documented error
//! codes (issue 4: bad alignment, ranges outside guest RAM, wrapping lengths, bad flags, bad
//! selectors), without faulting and without writing guest memory.

use crate::arch::hypercall::Rampart;
use rampart_hv_abi::{Access, Hypercall, HypercallError};

/// Far outside any guest RAM the emulators give us (32 TiB): not mapped in EPT.
const OUTSIDE_RAM: u64 = 1 << 45;
/// A page-aligned address inside low guest RAM, used only where the request fails first on
/// another argument.
const LOW_PAGE: u64 = 0x20_0000;

/// One malformed request and the error the hypervisor must answer.
pub struct Case {
    pub name: &'static str,
    pub call: Hypercall,
    pub arguments: [u64; 3],
    pub expected: HypercallError,
}

/// Every case fails on an argument check before the hypervisor could touch guest memory.
pub const CASES: [Case; 7] = [
    case(
        "protect-unaligned",
        Hypercall::ProtectRange,
        [0x1234, 0x1000, Access::READ.bits() as u64],
        HypercallError::OutOfRange,
    ),
    case(
        "protect-outside-ram",
        Hypercall::ProtectRange,
        [OUTSIDE_RAM, 0x1000, Access::READ.bits() as u64],
        HypercallError::OutOfRange,
    ),
    case(
        "protect-bad-rights",
        Hypercall::ProtectRange,
        [LOW_PAGE, 0x1000, 1 << 8],
        HypercallError::InvalidArgument,
    ),
    case(
        "grant-empty",
        Hypercall::GrantExecute,
        [LOW_PAGE, 0, 0],
        HypercallError::OutOfRange,
    ),
    case(
        "revoke-wrapping",
        Hypercall::RevokeExecute,
        [LOW_PAGE, u64::MAX, 0],
        HypercallError::OutOfRange,
    ),
    case(
        "exit-count-bad-reason",
        Hypercall::ExitCount,
        [1000, 0, 0],
        HypercallError::InvalidArgument,
    ),
    case(
        "audit-buffer-outside-ram",
        Hypercall::ReadAuditLog,
        [OUTSIDE_RAM, 1, 0],
        HypercallError::OutOfRange,
    ),
];

const fn case(
    name: &'static str,
    call: Hypercall,
    arguments: [u64; 3],
    expected: HypercallError,
) -> Case {
    Case {
        name,
        call,
        arguments,
        expected,
    }
}

/// Runs every case; returns the names and results of those answered otherwise.
pub fn run(rampart: &Rampart) -> impl Iterator<Item = (&'static str, i64)> + '_ {
    CASES.iter().filter_map(|c| {
        let [a, b, d] = c.arguments;
        let result = rampart.call_rejected(c.call, a, b, d);
        (result != c.expected as i64).then_some((c.name, result))
    })
}
