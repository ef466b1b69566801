//! Replays the derivation written at the top of tests/vmx-caps/nested_kvm_skylake.txt: each
//! capability MSR is recomputed from the bit lists of Linux v6.12 `nested_vmx_setup_*()` (masked
//! with what `setup_vmcs_config()` keeps on a Skylake client host) and compared with the fixture,
//! so an arithmetic slip in the hand-written hex cannot go unnoticed. Derived, not captured.

use super::msr::*;
use x86::vmx::vmcs::control::{
    EntryControls as N, ExitControls as X, PinbasedControls as P, PrimaryControls as C,
    SecondaryControls as S,
};

const FIXTURE: &str = include_str!("../../tests/vmx-caps/nested_kvm_skylake.txt");

/// `*_ALWAYSON_WITHOUT_TRUE_MSR` in arch/x86/kvm/vmx/capabilities.h (SDM Vol. 3D A.2 default1).
const PIN_ALWAYSON: u32 = 0x16;
const CPU_ALWAYSON: u32 = 0x0401_e172;
const EXIT_ALWAYSON: u32 = 0x0003_6dff;
const ENTRY_ALWAYSON: u32 = 0x0000_11ff;

fn msr(index: u32) -> u64 {
    let wanted = format!("msr {index:#x} = 0x");
    let line = FIXTURE.lines().find(|l| l.starts_with(&wanted)).unwrap();
    u64::from_str_radix(&line[wanted.len()..], 16).unwrap()
}

fn control(low: u32, high: u32) -> u64 {
    u64::from(low) | (u64::from(high) << 32)
}

#[test]
fn pinbased_follows_nested_vmx_setup_pinbased_ctls() {
    // vmcs_config: required ext-intr/NMI, optional vNMI/timer (posted: no APICv on the host).
    let config = P::EXTERNAL_INTERRUPT_EXITING | P::NMI_EXITING | P::VIRTUAL_NMIS;
    let high = (config.bits() | PIN_ALWAYSON) | P::VMX_PREEMPTION_TIMER.bits();
    assert_eq!(
        msr(IA32_VMX_TRUE_PINBASED_CTLS),
        control(PIN_ALWAYSON, high)
    );
}

#[test]
fn procbased_follows_nested_vmx_setup_cpubased_ctls() {
    // Every bit of the nested list is in vmcs_config on Skylake (required or optional there).
    let list = C::INTERRUPT_WINDOW_EXITING
        | C::NMI_WINDOW_EXITING
        | C::USE_TSC_OFFSETTING
        | C::HLT_EXITING
        | C::INVLPG_EXITING
        | C::MWAIT_EXITING
        | C::CR3_LOAD_EXITING
        | C::CR3_STORE_EXITING
        | C::CR8_LOAD_EXITING
        | C::CR8_STORE_EXITING
        | C::MOV_DR_EXITING
        | C::UNCOND_IO_EXITING
        | C::USE_IO_BITMAPS
        | C::MONITOR_TRAP_FLAG
        | C::MONITOR_EXITING
        | C::RDPMC_EXITING
        | C::RDTSC_EXITING
        | C::PAUSE_EXITING
        | C::USE_TPR_SHADOW
        | C::SECONDARY_CONTROLS;
    let high = list.bits() | CPU_ALWAYSON | C::USE_MSR_BITMAPS.bits();
    let low = CPU_ALWAYSON & !(C::CR3_LOAD_EXITING | C::CR3_STORE_EXITING).bits();
    assert_eq!(msr(IA32_VMX_TRUE_PROCBASED_CTLS), control(low, high));
}

#[test]
fn secondary_follows_nested_vmx_setup_secondary_ctls() {
    // Host secondary controls (client Skylake: no APICv, x2APIC virtualization, SGX launch
    // control) intersected with KVM's nested list, plus what KVM adds for EPT, VPID, UG, PML,
    // flexpriority and emulated VMCS shadowing.
    let from_host = S::DTABLE_EXITING
        | S::ENABLE_RDTSCP
        | S::WBINVD_EXITING
        | S::RDRAND_EXITING
        | S::ENABLE_INVPCID
        | S::ENABLE_VM_FUNCTIONS
        | S::RDSEED_EXITING
        | S::ENABLE_XSAVES_XRSTORS
        | S::USE_TSC_SCALING;
    let added = S::VMCS_SHADOWING
        | S::ENABLE_EPT
        | S::ENABLE_PML
        | S::ENABLE_VPID
        | S::UNRESTRICTED_GUEST
        | S::VIRTUALIZE_APIC;
    assert_eq!(
        msr(IA32_VMX_PROCBASED_CTLS2),
        control(0, (from_host | added).bits())
    );
}

#[test]
fn exit_and_entry_follow_nested_vmx_setup_exit_entry_ctls() {
    let exit_high =
        (X::HOST_ADDRESS_SPACE_SIZE | X::LOAD_IA32_PAT | X::SAVE_IA32_PAT | X::CLEAR_IA32_BNDCFGS)
            .bits()
            | EXIT_ALWAYSON
            | (X::LOAD_IA32_EFER
                | X::SAVE_IA32_EFER
                | X::SAVE_VMX_PREEMPTION_TIMER
                | X::ACK_INTERRUPT_ON_EXIT
                | X::LOAD_IA32_PERF_GLOBAL_CTRL)
                .bits();
    let exit_low = EXIT_ALWAYSON & !X::SAVE_DEBUG_CONTROLS.bits();
    assert_eq!(msr(IA32_VMX_TRUE_EXIT_CTLS), control(exit_low, exit_high));
    let entry_high = (N::IA32E_MODE_GUEST | N::LOAD_IA32_PAT | N::LOAD_IA32_BNDCFGS).bits()
        | ENTRY_ALWAYSON
        | (N::LOAD_IA32_EFER | N::LOAD_IA32_PERF_GLOBAL_CTRL).bits();
    let entry_low = ENTRY_ALWAYSON & !N::LOAD_DEBUG_CONTROLS.bits();
    assert_eq!(
        msr(IA32_VMX_TRUE_ENTRY_CTLS),
        control(entry_low, entry_high)
    );
}

#[test]
fn basic_misc_and_ept_follow_nested_vmx_setup() {
    const VMCS12_REVISION: u64 = 0x11e5_7ed0;
    const VMCS12_SIZE: u64 = 0x1000;
    const MEMTYPE_WB: u64 = 6;
    let basic = VMCS12_REVISION | VMCS12_SIZE << 32 | MEMTYPE_WB << 50 | 1 << 54 | 1 << 55;
    assert_eq!(msr(IA32_VMX_BASIC), basic);
    // Host "store LMA" (bit 5) | VMWRITE-any-field (29) | emulated rate 5 | HLT (6) | wait-SIPI (8).
    let misc = 1 << 5 | 1 << 29 | 5 | 1 << 6 | 1 << 8;
    assert_eq!(msr(IA32_VMX_MISC), misc);
    // (exec-only | 4-level | WB | INVEPT) & host, | all/single context | 2M | 1G | A/D.
    let ept = 1 | 1 << 6 | 1 << 14 | 1 << 20 | 1 << 26 | 1 << 25 | 1 << 16 | 1 << 17 | 1 << 21;
    // INVVPID | individual-address | single-context | all-context | single-non-global.
    let vpid: u64 = 1 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11;
    assert_eq!(msr(IA32_VMX_EPT_VPID_CAP), ept | vpid << 32);
    // PCE | the CPUID-backed bits (VME..OSXMMEXCPT, UMIP, VMXE, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP).
    let cr4_fixed1 = 0x7ff | 1 << 11 | 1 << 13 | 1 << 16 | 1 << 17 | 1 << 18 | 1 << 20 | 1 << 21;
    assert_eq!(msr(IA32_VMX_CR4_FIXED1), cr4_fixed1);
}

/// The bits of each control word that QEMU names in `feature_word_info[FEAT_VMX_*]`
/// (target/i386/cpu.c); `-cpu host` is migratable by default and keeps only named bits.
const QEMU_NAMED_PIN: u32 = 1 << 0 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 7;
const QEMU_NAMED_PROC: u32 = 0xfbf9_9e8c;
const QEMU_NAMED_SECONDARY: u32 = 0x0613_ffff;
const QEMU_NAMED_EXIT: u32 = 1 << 2 | 1 << 12 | 1 << 15 | 0x00fc_0000 | 1 << 25 | 1 << 29 | 1 << 31;
const QEMU_NAMED_ENTRY: u32 = 1 << 2 | 1 << 9 | 0x0001_e000 | 1 << 18 | 1 << 22 | 1 << 23;

/// QEMU's round trip: `kvm_arch_get_supported_msr_feature()` keeps the bits that may be 1 but
/// need not be, `make_vmx_msr_value()` rebuilds the MSR from them and the SDM's default1 bits.
fn qemu_round_trip(kvm: u64, named: u32, default1: u32) -> u64 {
    let features = ((kvm >> 32) as u32 & !(kvm as u32)) & named;
    control(default1 & !features, features | default1)
}

#[test]
fn qemu_cpu_host_writes_back_the_values_kvm_offers() {
    let named_proc = (C::INTERRUPT_WINDOW_EXITING
        | C::USE_TSC_OFFSETTING
        | C::HLT_EXITING
        | C::INVLPG_EXITING
        | C::MWAIT_EXITING
        | C::RDPMC_EXITING
        | C::RDTSC_EXITING
        | C::CR3_LOAD_EXITING
        | C::CR3_STORE_EXITING
        | C::CR8_LOAD_EXITING
        | C::CR8_STORE_EXITING
        | C::USE_TPR_SHADOW
        | C::NMI_WINDOW_EXITING
        | C::MOV_DR_EXITING
        | C::UNCOND_IO_EXITING
        | C::USE_IO_BITMAPS
        | C::MONITOR_TRAP_FLAG
        | C::USE_MSR_BITMAPS
        | C::MONITOR_EXITING
        | C::PAUSE_EXITING
        | C::SECONDARY_CONTROLS)
        .bits();
    assert_eq!(named_proc, QEMU_NAMED_PROC);
    // Host address-space size has no name: QEMU adds it from CPUID's LM bit (fixed_vmx_exit).
    let host_64 = u64::from(X::HOST_ADDRESS_SPACE_SIZE.bits()) << 32;
    let words = [
        (IA32_VMX_TRUE_PINBASED_CTLS, QEMU_NAMED_PIN, PIN_ALWAYSON, 0),
        (
            IA32_VMX_TRUE_PROCBASED_CTLS,
            QEMU_NAMED_PROC,
            CPU_ALWAYSON,
            0,
        ),
        (IA32_VMX_PROCBASED_CTLS2, QEMU_NAMED_SECONDARY, 0, 0),
        (
            IA32_VMX_TRUE_EXIT_CTLS,
            QEMU_NAMED_EXIT,
            EXIT_ALWAYSON,
            host_64,
        ),
        (
            IA32_VMX_TRUE_ENTRY_CTLS,
            QEMU_NAMED_ENTRY,
            ENTRY_ALWAYSON,
            0,
        ),
    ];
    for (index, named, default1, fixed) in words {
        let kvm = msr(index);
        assert_eq!(
            qemu_round_trip(kvm, named, default1) | fixed,
            kvm,
            "{index:#x}"
        );
    }
}
