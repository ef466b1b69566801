//! The checks a VM entry makes on the VMCS (SDM Vol. 3C chapter 27, "VM Entries": 27.2 on the
//! controls and the host-state area, 27.3.1 on the guest-state area), each named by its
//! section, for the VMCS Rampart launches with (`vmx::setup::launch_image`). Pure: host tests
//! run it over the image built for every capability fixture and over broken images. In
//! development builds (feature `gdb`) the hypervisor runs it before each VMLAUNCH
//! ([`before_launch`]); a production build carries none of it.
//!
//! Covered: the checks that apply to a 64-bit host and a 64-bit (IA-32e mode) guest without
//! unrestricted guest, virtual-interrupt delivery, posted interrupts, VMCS shadowing, PML,
//! EPT-violation #VE or MSR-load areas (Rampart uses none of them, and the checks below verify
//! those controls are off or their counts 0). Not covered: the checks on fields Rampart never
//! writes and the CPU zeroes (VM functions, TSC scaling, SPP, ENCLS exiting) beyond their
//! controls being 0, and the event-injection rules past "nothing injected".
//!
//! Bochs (its `cpu/vmx.cc`, read in Debian's 3.0 source; 2.7's was not on the mirror) does not
//! make four of these: 27.3.1.4 RIP canonical in 64-bit mode, 27.3.1.5 the activity state
//! against IA32_VMX_MISC, 27.2.1.1 the EPTP memory type against IA32_VMX_EPT_VPID_CAP, 27.2.1.3
//! entry to SMM outside SMM (it panics instead). A VMCS breaking them boots under Bochs and
//! fails on a real CPU: the host tests' broken-VMCS cases are what hold them.
#![forbid(unsafe_code)]

use super::caps::VmxCapabilities;
use super::vmcs_image::VmcsImage;
use crate::guest_paging::walker::is_canonical as canonical;
use x86::vmx::vmcs::control::{self, PrimaryControls};

mod fields;
mod guest;
mod host;

/// One failed check: the SDM section and what it requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub section: &'static str,
    pub rule: &'static str,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Checks evaluated.
    pub ran: usize,
    failures: [Failure; MAX_REPORTED],
    count: usize,
}

/// Failures kept per report (a broken VMCS fails a few checks, not dozens).
const MAX_REPORTED: usize = 16;

impl Report {
    pub fn failures(&self) -> &[Failure] {
        &self.failures[..self.count]
    }

    pub fn passed(&self) -> bool {
        self.count == 0
    }

    fn rule(&mut self, section: &'static str, rule: &'static str, holds: bool) {
        self.ran += 1;
        if !holds && self.count < MAX_REPORTED {
            self.failures[self.count] = Failure { section, rule };
            self.count += 1;
        }
    }
}

/// Runs every check on `image` for a CPU with `caps` and a `phys_bits`-bit physical-address
/// width (CPUID.80000008H:EAX[7:0]).
pub fn check(image: &VmcsImage, caps: &VmxCapabilities, phys_bits: u32) -> Report {
    let mut report = Report {
        ran: 0,
        failures: [Failure {
            section: "",
            rule: "",
        }; MAX_REPORTED],
        count: 0,
    };
    let primary = image.value(control::PRIMARY_PROCBASED_EXEC_CONTROLS);
    let secondary = if primary & u64::from(PrimaryControls::SECONDARY_CONTROLS.bits()) != 0 {
        image.value(control::SECONDARY_PROCBASED_EXEC_CONTROLS)
    } else {
        0
    };
    let vmcs = Checked {
        image,
        caps,
        phys_bits,
        secondary,
    };
    host::check(&mut report, &vmcs);
    guest::check(&mut report, &vmcs);
    report
}

/// What every check reads: the image, the CPU's capabilities and physical-address width, and
/// the secondary controls in force (0 unless activated).
struct Checked<'a> {
    image: &'a VmcsImage,
    caps: &'a VmxCapabilities,
    phys_bits: u32,
    secondary: u64,
}

impl Checked<'_> {
    fn v(&self, field: u32) -> u64 {
        self.image.value(field)
    }

    /// True if `address` has bits set beyond the physical-address width.
    fn beyond_width(&self, address: u64) -> bool {
        self.phys_bits < 64 && address >> self.phys_bits != 0
    }
}

/// True if every bit of `bits` is set in `value`.
fn has(value: u64, bits: u32) -> bool {
    value & u64::from(bits) == u64::from(bits)
}

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_PCIDE: u64 = 1 << 17;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// SCE, LME, LMA, NXE (bits 0, 8, 10, 11): the IA32_EFER bits a VM entry accepts set.
const EFER_DEFINED: u64 = (1 << 0) | EFER_LME | EFER_LMA | (1 << 11);
const RIGHTS_RESERVED: u64 = (0xf << 8) | (0x7fff << 17);
const RFLAGS_RESERVED_ZERO: u64 = !0x3f_ffff | (1 << 15) | (1 << 5) | (1 << 3);
/// Pending debug exceptions: bits 11:4, 13, 15 and 63:17 are reserved.
const PENDING_DEBUG_RESERVED: u64 = (0xff << 4) | (1 << 13) | (1 << 15) | !0x1_ffff;

/// True if every byte of a PAT value is a memory type (0, 1, 4, 5, 6 or 7).
fn pat_ok(pat: u64) -> bool {
    pat.to_le_bytes()
        .iter()
        .all(|&t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// Development builds: runs the checks on the VMCS about to be launched for vCPU `slot` and
/// logs how many ran; on a failure, calls `stop` (the caller's fatal path) naming every failed
/// check rather than VMLAUNCH into an entry failure (`[hv] FATAL: VM entry checks failed for
/// vCPU 0: SDM 27.3.1.2: ...`).
pub fn before_launch(
    image: &VmcsImage,
    caps: &VmxCapabilities,
    slot: u64,
    stop: fn(core::fmt::Arguments<'_>) -> !,
) {
    let phys_bits = raw_cpuid::cpuid!(0x8000_0008).eax & 0xff;
    let report = check(image, caps, phys_bits);
    if !report.passed() {
        let failures = Failures(&report);
        stop(format_args!(
            "VM entry checks failed for vCPU {slot}: {failures}"
        ));
    }
    log::info!(
        "VM-entry checks (SDM Vol. 3C 27.2-27.3): {} of {} pass for vCPU {slot}",
        report.ran,
        report.ran
    );
}

/// After a failed VM entry (development builds): the checks the current VMCS fails, read back
/// field by field, as `SDM 27.x.y: rule; ...` (empty if every check passes: then the failure
/// is one this checker does not cover).
pub fn current_vmcs_failures(
    vmcs: &super::vmcs::Vmcs,
    caps: &VmxCapabilities,
) -> impl core::fmt::Display {
    let mut image = VmcsImage::new();
    for &field in fields::CHECKED_FIELDS {
        if let Ok(value) = vmcs.read(field) {
            image.set(field, value);
        }
    }
    let phys_bits = raw_cpuid::cpuid!(0x8000_0008).eax & 0xff;
    FailuresOwned(check(&image, caps, phys_bits))
}

/// The failures as `SDM 27.x.y: rule; ...`.
struct Failures<'a>(&'a Report);

struct FailuresOwned(Report);

impl core::fmt::Display for FailuresOwned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        Failures(&self.0).fmt(f)
    }
}

impl core::fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (n, failure) in self.0.failures().iter().enumerate() {
            let separator = if n == 0 { "" } else { "; " };
            write!(f, "{separator}SDM {}: {}", failure.section, failure.rule)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
