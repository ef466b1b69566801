//! Control fitting, EPT and CR fixed bits against the capability MSRs nested KVM offers its L1
//! guest on a Skylake client host (tests/vmx-caps/nested_kvm_skylake.txt). That fixture is derived
//! from the Linux v6.12 and QEMU sources named in its header, not captured: untested on KVM.

use super::caps::{ept_cap, VmxCapabilities};
use super::controls::Controls;
use super::msr::*;
use std::collections::HashMap;
use x86::vmx::vmcs::control::{
    EntryControls, ExitControls, PinbasedControls, PrimaryControls, SecondaryControls,
};

const NESTED_KVM_SKYLAKE: &str = include_str!("../../tests/vmx-caps/nested_kvm_skylake.txt");

/// IA32_VMX_PROCBASED_CTLS3 (SDM Vol. 3D A.3.4): tertiary controls, HLAT among them.
const IA32_VMX_PROCBASED_CTLS3: u32 = 0x492;
/// Primary processor-based control bit 17: activate tertiary controls (SDM Vol. 3C 26.6.2).
const PRIMARY_ACTIVATE_TERTIARY: u64 = 1 << 17;
/// IA32_VMX_MISC bits 24:16: number of CR3-target values (A.6).
const MISC_CR3_TARGET_COUNT_SHIFT: u32 = 16;
const MISC_CR3_TARGET_COUNT_MASK: u64 = 0x1ff;
/// The allowed-0 bits of the non-TRUE control MSRs ("default1" classes, SDM Vol. 3D A.2).
const PINBASED_DEFAULT1: u64 = 0x16;
const PROCBASED_DEFAULT1: u64 = 0x0401_e172;
const EXIT_DEFAULT1: u64 = 0x0003_6dff;
const ENTRY_DEFAULT1: u64 = 0x0000_11ff;
/// CPUID.1:ECX bit 5 (VMX); CPUID.7.0:EBX bits 7 (SMEP) and 20 (SMAP); CPUID.7.0:ECX bit 2 (UMIP).
const CPUID_1_ECX_VMX: u64 = 1 << 5;
const CPUID_7_EBX_SMEP: u64 = 1 << 7;
const CPUID_7_EBX_SMAP: u64 = 1 << 20;
const CPUID_7_ECX_UMIP: u64 = 1 << 2;

/// The fixture's MSRs ("msr 0x480 = 0x..."; a value without "0x", such as "#GP", is an absent
/// MSR) and its CPUID lines.
struct Fixture {
    msrs: HashMap<u32, u64>,
    cpuid: HashMap<&'static str, u64>,
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap()
}

impl Fixture {
    fn parse(text: &'static str) -> Self {
        let mut msrs = HashMap::new();
        let mut cpuid = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("msr ") {
                let (name, value) = rest.split_once(" = ").unwrap();
                if value.starts_with("0x") {
                    msrs.insert(hex(name) as u32, hex(value));
                }
            } else if let Some(rest) = line.strip_prefix("cpuid1.ecx = ") {
                cpuid.insert("1.ecx", hex(rest));
            } else if let Some(rest) = line.strip_prefix("cpuid7.ebx = ") {
                let mut words = rest.split_whitespace();
                cpuid.insert("7.ebx", hex(words.next().unwrap()));
                for word in words {
                    let (reg, value) = word.split_once('=').unwrap();
                    cpuid.insert(if reg == "ecx" { "7.ecx" } else { "7.edx" }, hex(value));
                }
            }
        }
        Self { msrs, cpuid }
    }
}

impl MsrSource for Fixture {
    fn read(&self, msr: u32) -> Option<u64> {
        self.msrs.get(&msr).copied()
    }
}

fn fixture() -> Fixture {
    Fixture::parse(NESTED_KVM_SKYLAKE)
}

fn caps() -> VmxCapabilities {
    VmxCapabilities::read(&fixture()).unwrap()
}

fn allowed1(capability: u64, bits: u32) -> bool {
    (capability >> 32) & u64::from(bits) == u64::from(bits)
}

#[test]
fn nested_kvm_fits_rampart_controls() {
    let caps = caps();
    // IA32_VMX_BASIC bits 53:50: VMCS memory type write-back (6, SDM Vol. 3D A.1).
    assert!(caps.has_true_controls() && (caps.basic >> 50) & 0xf == 6);
    let c = Controls::fit(&caps).unwrap_or_else(|e| panic!("nested KVM: {e}"));
    for (value, cap) in [
        (c.pinbased, caps.pinbased),
        (c.primary, caps.procbased),
        (c.secondary, caps.procbased2),
        (c.exit, caps.exit),
        (c.entry, caps.entry),
    ] {
        assert_eq!(value & cap as u32, cap as u32, "allowed-0 bit cleared");
        assert_eq!(
            value & !((cap >> 32) as u32),
            0,
            "bit set that is not allowed-1"
        );
    }
    let bitmaps = PrimaryControls::USE_MSR_BITMAPS | PrimaryControls::USE_IO_BITMAPS;
    assert_eq!(c.primary & bitmaps.bits(), bitmaps.bits());
    let no_exit = PrimaryControls::HLT_EXITING
        | PrimaryControls::CR3_LOAD_EXITING
        | PrimaryControls::CR3_STORE_EXITING
        | PrimaryControls::INVLPG_EXITING
        | PrimaryControls::RDTSC_EXITING
        | PrimaryControls::UNCOND_IO_EXITING;
    assert_eq!(
        c.primary & no_exit.bits(),
        0,
        "HLT/CR3/INVLPG/RDTSC must not exit"
    );
    assert_ne!(c.pinbased & PinbasedControls::NMI_EXITING.bits(), 0);
    assert_eq!(
        c.pinbased & PinbasedControls::EXTERNAL_INTERRUPT_EXITING.bits(),
        0
    );
    assert!(c.has_secondary(SecondaryControls::ENABLE_EPT));
    assert!(c.has_secondary(SecondaryControls::ENABLE_VPID));
    assert!(c.has_secondary(SecondaryControls::ENABLE_XSAVES_XRSTORS));
    assert!(!c.has_secondary(SecondaryControls::WBINVD_EXITING));
    assert!(
        c.has_exit(ExitControls::LOAD_IA32_PAT) && c.has_exit(ExitControls::SAVE_DEBUG_CONTROLS)
    );
    assert!(
        c.has_entry(EntryControls::LOAD_IA32_PAT)
            && c.has_entry(EntryControls::LOAD_DEBUG_CONTROLS)
    );
}

#[test]
fn nested_kvm_ept_is_usable() {
    let caps = caps();
    // The conditions `enable::check` puts on EPT.
    assert!(caps.ept_has(ept_cap::PAGE_WALK_4));
    assert!(caps.ept_has(ept_cap::MEMORY_TYPE_WB));
    assert!(
        !caps.ept_has(ept_cap::MEMORY_TYPE_UC),
        "KVM offers only WB EPT paging structures"
    );
    assert!(caps.ept_has(ept_cap::INVEPT));
    // Page sizes and rights the EPT builder and the kernel-text policy use.
    assert!(caps.ept_has(ept_cap::PAGE_2M) && caps.ept_has(ept_cap::PAGE_1G));
    assert!(caps.ept_has(ept_cap::EXECUTE_ONLY));
    assert!(caps.ept_has(ept_cap::ACCESSED_DIRTY));
}

#[test]
fn nested_kvm_offers_the_invalidation_types_rampart_uses() {
    let caps = caps();
    // smp::shootdown issues single-context INVEPT, all-context where single is missing.
    assert!(caps.ept_has(ept_cap::INVEPT_SINGLE_CONTEXT));
    assert!(caps.ept_has(ept_cap::INVEPT_ALL_CONTEXT));
    // Rampart issues single-context INVVPID (all-context without it) on checked CR3 loads.
    assert!(caps.secondary_allows(SecondaryControls::ENABLE_VPID.bits()));
    assert!(caps.ept_has(1 << 32), "INVVPID");
    assert!(caps.ept_has(ept_cap::INVVPID_SINGLE_CONTEXT));
    assert!(caps.ept_has(1 << 42), "INVVPID all-context");
}

#[test]
fn nested_kvm_offers_descriptor_table_exiting_timer_and_mtf() {
    let caps = caps();
    // LockDescriptorTables needs descriptor-table exiting (exits::descriptor_tables).
    assert!(caps.secondary_allows(SecondaryControls::DTABLE_EXITING.bits()));
    // The GDB stub polls with the preemption timer and single-steps with MTF.
    let timer = PinbasedControls::VMX_PREEMPTION_TIMER.bits();
    assert!(allowed1(caps.pinbased, timer));
    assert_eq!(caps.preemption_timer_rate(), 5, "KVM's emulated rate");
    assert!(allowed1(
        caps.procbased,
        PrimaryControls::MONITOR_TRAP_FLAG.bits()
    ));
    assert!(allowed1(
        caps.exit,
        ExitControls::SAVE_VMX_PREEMPTION_TIMER.bits()
    ));
}

#[test]
fn nested_kvm_has_no_cr3_targets() {
    let count = (caps().misc >> MISC_CR3_TARGET_COUNT_SHIFT) & MISC_CR3_TARGET_COUNT_MASK;
    // vmx::setup writes CR3_TARGET_COUNT = 0, the only value valid here.
    assert_eq!(count, 0);
}

#[test]
fn nested_kvm_has_no_tertiary_controls_hlat_or_mbec() {
    let fixture = fixture();
    let caps = caps();
    assert_eq!(fixture.read(IA32_VMX_PROCBASED_CTLS3), None);
    assert_eq!(caps.procbased & (PRIMARY_ACTIVATE_TERTIARY << 32), 0);
    assert!(!caps.secondary_allows(SecondaryControls::MODE_BASED_EPT.bits()));
    assert!(!caps.secondary_allows(SecondaryControls::EPT_VIOLATION_VE.bits()));
    assert!(!caps.secondary_allows(SecondaryControls::SUB_PAGE_EPT.bits()));
    assert!(!caps.secondary_allows(SecondaryControls::PAUSE_LOOP_EXITING.bits()));
    assert!(caps.secondary_allows(SecondaryControls::VMCS_SHADOWING.bits()));
    assert!(caps.secondary_allows(SecondaryControls::ENABLE_VM_FUNCTIONS.bits()));
    assert_eq!(fixture.read(0x491), Some(1), "EPTP switching only");
}

#[test]
fn nested_kvm_cr_fixed_bits() {
    let c = caps();
    const CR0_PE_PG: u64 = (1 << 0) | (1 << 31);
    const CR0_NE: u64 = 1 << 5;
    const CR4_VMXE: u64 = 1 << 13;
    assert_ne!(c.fit_cr4(0) & CR4_VMXE, 0);
    assert_ne!(c.fit_cr0(CR0_PE_PG, false) & CR0_NE, 0);
    assert_eq!(c.fit_cr0(0, false) & CR0_PE_PG, CR0_PE_PG);
    assert_eq!(c.fit_cr0(0, true) & CR0_PE_PG, 0);
    // CR4 bits the pinning rules set survive; PKE and LA57 (absent on Skylake client) do not.
    const CR4_SMEP_SMAP_UMIP: u64 = (1 << 20) | (1 << 21) | (1 << 11);
    const CR4_PKE_LA57: u64 = (1 << 22) | (1 << 12);
    assert_eq!(c.fit_cr4(CR4_SMEP_SMAP_UMIP), CR4_SMEP_SMAP_UMIP | CR4_VMXE);
    assert_eq!(c.fit_cr4(CR4_PKE_LA57) & CR4_PKE_LA57, 0);
}

#[test]
fn nested_kvm_cpuid_and_feature_control_allow_vmx() {
    let f = fixture();
    assert_ne!(f.cpuid["1.ecx"] & CPUID_1_ECX_VMX, 0);
    assert_eq!(
        f.cpuid["7.ebx"] & (CPUID_7_EBX_SMEP | CPUID_7_EBX_SMAP),
        CPUID_7_EBX_SMEP | CPUID_7_EBX_SMAP
    );
    assert_ne!(
        f.cpuid["7.ecx"] & CPUID_7_ECX_UMIP,
        0,
        "UMIP is emulated by KVM"
    );
    // OVMF locks IA32_FEATURE_CONTROL with VMX outside SMX on: `enable` must not write it.
    let feature_control = f.read(IA32_FEATURE_CONTROL).unwrap();
    let wanted = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
    assert_eq!(feature_control & wanted, wanted);
}

#[test]
fn nested_kvm_non_true_msrs_add_the_default1_bits() {
    let f = fixture();
    let pairs = [
        (
            IA32_VMX_PINBASED_CTLS,
            IA32_VMX_TRUE_PINBASED_CTLS,
            PINBASED_DEFAULT1,
        ),
        (
            IA32_VMX_PROCBASED_CTLS,
            IA32_VMX_TRUE_PROCBASED_CTLS,
            PROCBASED_DEFAULT1,
        ),
        (IA32_VMX_EXIT_CTLS, IA32_VMX_TRUE_EXIT_CTLS, EXIT_DEFAULT1),
        (
            IA32_VMX_ENTRY_CTLS,
            IA32_VMX_TRUE_ENTRY_CTLS,
            ENTRY_DEFAULT1,
        ),
    ];
    for (plain, true_msr, default1) in pairs {
        assert_eq!(
            f.read(plain),
            Some(f.read(true_msr).unwrap() | default1),
            "{plain:#x}"
        );
    }
}

#[test]
fn nested_kvm_summary_names_the_features() {
    let s = format!("{}", caps());
    for feature in [
        " ept",
        " ept-1g",
        " ept-xo",
        " ept-ad",
        " vpid",
        " unrestricted",
    ] {
        assert!(s.contains(feature), "{s}");
    }
    assert!(s.contains("-mbec") && s.contains(" vmcs-shadow"), "{s}");
    assert!(
        s.contains(" preempt-timer -hlat cr3-targets 0 (timer rate 2^5)"),
        "{s}"
    );
}
