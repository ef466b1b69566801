//! The exit fuzzer's raw instructions (`fuzz`, cargo feature `attacks`) and the
//! exception fixup that lets one kernel thread survive their expected faults: before each
//! instruction the probe registers its address and a recovery address in this CPU's slot;
//! the #GP/#UD/#VE/... handler ([`fixup`]) resumes at the recovery address when the faulting
//! RIP is the registered one and records the vector. Nothing else is ever fixed up.

use super::percpu;
use crate::trap::InterruptFrame;
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use rampart_boot_info::MAX_CPUS;

/// No fault was recorded (not an exception vector).
const NO_FAULT: u64 = u64::MAX;

/// One CPU's registration: the armed instruction, where to resume, the vector taken.
#[repr(C)]
struct Slot {
    armed_rip: AtomicU64,
    recovery_rip: AtomicU64,
    vector: AtomicU64,
}

/// `Slot` field offsets used by the probe's asm.
const ARMED_OFFSET: usize = 0;
const RECOVERY_OFFSET: usize = 8;
const _: () = assert!(core::mem::offset_of!(Slot, armed_rip) == ARMED_OFFSET);
const _: () = assert!(core::mem::offset_of!(Slot, recovery_rip) == RECOVERY_OFFSET);

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        armed_rip: AtomicU64::new(0),
        recovery_rip: AtomicU64::new(0),
        vector: AtomicU64::new(NO_FAULT),
    }
}; MAX_CPUS];

/// Called for every ring-0 exception: if it struck this CPU's armed probe instruction, records
/// the vector, disarms, resumes the frame at the recovery address and returns true.
pub fn fixup(frame: &mut InterruptFrame) -> bool {
    let slot = &SLOTS[percpu::index()];
    let armed = slot.armed_rip.load(Ordering::SeqCst);
    if armed == 0 || armed != frame.rip {
        return false;
    }
    slot.armed_rip.store(0, Ordering::SeqCst);
    slot.vector.store(frame.vector, Ordering::SeqCst);
    frame.rip = slot.recovery_rip.load(Ordering::SeqCst);
    true
}

/// Runs one instruction (`$insn`) with the fixup armed on this CPU: `Ok(())` if it completed,
/// `Err(vector)` if it faulted. Interrupts must be off (kernel threads run so), so the thread
/// stays on this CPU. Labels 7/8 are local to the asm block.
macro_rules! probe {
    ($insn:literal $(, $($operands:tt)*)?) => {{
        let slot = &SLOTS[percpu::index()];
        slot.vector.store(NO_FAULT, Ordering::SeqCst);
        asm!(
            "lea {scratch}, [rip + 8f]",
            "mov qword ptr [{slot} + {recovery}], {scratch}",
            "lea {scratch}, [rip + 7f]",
            "mov qword ptr [{slot} + {armed}], {scratch}",
            "7:",
            $insn,
            "8:",
            slot = in(reg) slot as *const Slot,
            scratch = out(reg) _,
            recovery = const RECOVERY_OFFSET,
            armed = const ARMED_OFFSET,
            $($($operands)*)?
        );
        slot.armed_rip.store(0, Ordering::SeqCst);
        match slot.vector.swap(NO_FAULT, Ordering::SeqCst) {
            NO_FAULT => Ok(()),
            vector => Err(vector as u8),
        }
    }};
}

/// The result of a probe: the instruction's outputs, or the vector of its fault.
pub type Probe<T> = Result<T, u8>;

/// CPUID `leaf`/`subleaf` -> (EAX, EBX, ECX, EDX).
pub fn cpuid(leaf: u32, subleaf: u32) -> Probe<[u32; 4]> {
    let (a, c, d): (u32, u32, u32);
    let b: u64;
    // SAFETY: CPUID only reads identification data; RBX is saved around it (LLVM reserves it)
    // and the fixup only changes RIP to the recovery label.
    let result = unsafe {
        probe!(
            "xchg {b:r}, rbx\ncpuid\nxchg {b:r}, rbx",
            b = out(reg) b, inout("eax") leaf => a, inout("ecx") subleaf => c, out("edx") d
        )
    };
    result.map(|()| [a, b as u32, c, d])
}

/// RDMSR `msr`.
pub fn rdmsr(msr: u32) -> Probe<u64> {
    let (low, high): (u32, u32);
    // SAFETY: RDMSR at CPL0 only reads; a missing MSR's #GP is fixed up.
    let result = unsafe { probe!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high) };
    result.map(|()| (u64::from(high) << 32) | u64::from(low))
}

/// WRMSR `msr` = `value`.
///
/// # Safety
/// Writing `value` must not break the kernel if it succeeds (the fuzzer writes only MSRs the
/// hypervisor must refuse, or natively ones that do not exist).
pub unsafe fn wrmsr(msr: u32, value: u64) -> Probe<()> {
    // SAFETY: delegated to the caller; a #GP is fixed up.
    unsafe {
        probe!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32)
    }
}

/// MOV to CR4 of `value`.
///
/// # Safety
/// `value` must be one the CPU refuses (reserved bits set), or equal CR4.
pub unsafe fn write_cr4(value: u64) -> Probe<()> {
    // SAFETY: delegated to the caller.
    unsafe { probe!("mov cr4, {v}", v = in(reg) value) }
}

/// XSETBV XCR `index` = `value`.
///
/// # Safety
/// A successful write must leave state the kernel does not use (it never sets CR4.OSXSAVE,
/// so XSETBV always raises #UD here).
pub unsafe fn xsetbv(index: u32, value: u64) -> Probe<()> {
    // SAFETY: delegated to the caller.
    unsafe {
        probe!("xsetbv", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32)
    }
}

/// WBINVD (write back and invalidate caches: always safe).
pub fn wbinvd() -> Probe<()> {
    // SAFETY: writing back dirty lines first keeps memory coherent.
    unsafe { probe!("wbinvd") }
}

/// INVD (invalidate caches without writing back).
///
/// # Safety
/// Dirty cache lines are lost natively on real hardware: only for emulators, which keep no
/// cache (and under Rampart, where the hypervisor emulates it).
pub unsafe fn invd() -> Probe<()> {
    // SAFETY: delegated to the caller.
    unsafe { probe!("invd") }
}

/// VMX instruction `which` (0-11: VMXON, VMXOFF, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE,
/// VMLAUNCH, VMRESUME, INVEPT, INVVPID, GETSEC), with `operand` in the register
/// operands and a zeroed 16-byte memory operand; VMFUNC is left out (EAX=0 with EPTP
/// switching would need a list). Returns the fault.
///
/// # Safety
/// The instruction must fault (no VMX is on in the guest, natively or under Rampart); if it
/// did not, the memory operand is a local buffer.
pub unsafe fn vmx(which: usize, operand: u64) -> Probe<()> {
    let mut memory = [0u64; 2];
    let p = memory.as_mut_ptr();
    // SAFETY: delegated to the caller; every memory operand is the local buffer.
    unsafe {
        match which {
            0 => probe!("vmxon qword ptr [{p}]", p = in(reg) p),
            1 => probe!("vmxoff"),
            2 => probe!("vmclear qword ptr [{p}]", p = in(reg) p),
            3 => probe!("vmptrld qword ptr [{p}]", p = in(reg) p),
            4 => probe!("vmptrst qword ptr [{p}]", p = in(reg) p),
            5 => probe!("vmread {v}, {f}", f = in(reg) operand, v = out(reg) _),
            6 => probe!("vmwrite {f}, {v}", f = in(reg) operand, v = in(reg) operand),
            7 => probe!("vmlaunch"),
            8 => probe!("vmresume"),
            9 => probe!("invept {t}, xmmword ptr [{p}]", t = in(reg) operand, p = in(reg) p),
            10 => probe!("invvpid {t}, xmmword ptr [{p}]", t = in(reg) operand, p = in(reg) p),
            _ => probe!(".byte 0x0f, 0x37", inout("eax") operand as u32 => _),
        }
    }
}

/// IN AL from `port`.
///
/// # Safety
/// Reading `port` must have no side effect the kernel relies on.
pub unsafe fn inb(port: u16) -> Probe<u8> {
    let value: u8;
    // SAFETY: delegated to the caller.
    let result = unsafe { probe!("in al, dx", in("dx") port, out("al") value) };
    result.map(|()| value)
}

/// OUT `value` to byte port `port`.
///
/// # Safety
/// The write must be harmless (under Rampart: refused by the hypervisor).
pub unsafe fn outb(port: u16, value: u8) -> Probe<()> {
    // SAFETY: delegated to the caller.
    unsafe { probe!("out dx, al", in("dx") port, in("al") value) }
}

/// IN EAX from `port`.
///
/// # Safety
/// As [`inb`].
pub unsafe fn inl(port: u16) -> Probe<u32> {
    let value: u32;
    // SAFETY: delegated to the caller.
    let result = unsafe { probe!("in eax, dx", in("dx") port, out("eax") value) };
    result.map(|()| value)
}

/// OUT `value` to dword port `port`.
///
/// # Safety
/// As [`outb`].
pub unsafe fn outl(port: u16, value: u32) -> Probe<()> {
    // SAFETY: delegated to the caller.
    unsafe { probe!("out dx, eax", in("dx") port, in("eax") value) }
}

/// VMCALL with RAX = `number`, RDI/RSI/RDX/R10 = `arguments`; returns RAX.
///
/// # Safety
/// As `hypercall::vmcall`: any guest memory the hypervisor may write must be the caller's.
pub unsafe fn vmcall(number: u64, arguments: [u64; 4]) -> Probe<i64> {
    let result: u64;
    let [a, b, c, d] = arguments;
    // SAFETY: delegated to the caller; the ABI changes only RAX.
    let probe = unsafe {
        probe!(
            "vmcall",
            inout("rax") number => result,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d
        )
    };
    probe.map(|()| result as i64)
}

/// Reads the byte at virtual `address`.
///
/// # Safety
/// `address` must be mapped in the kernel's page tables (a #VE or #PF is fixed up).
pub unsafe fn read_byte(address: u64) -> Probe<u8> {
    let value: u8;
    // SAFETY: delegated to the caller.
    let result =
        unsafe { probe!("mov {v}, byte ptr [{a}]", a = in(reg) address, v = out(reg_byte) value) };
    result.map(|()| value)
}
