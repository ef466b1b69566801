//! `vmxinsn [NAME]`: ring 3 tries each privileged or virtualization instruction in a child
//! process of its own (`vmxinsn NAME` runs one). VMX instructions and GETSEC raise #UD (natively:
//! VMX is off; under Rampart they exit and the hypervisor injects #UD, hypercalls being ring 0
//! only); XSETBV with CR4.OSXSAVE clear (ours never sets it) raises #GP or #UD, as the CPU
//! orders the CPL and OSXSAVE checks; RDMSR, WRMSR, HLT, INVD and MOV to CR0 raise #GP at CPL 3. The kernel must
//! kill only the child (exit code -11); the parent prints `vmxinsn: NAME: exit code C` for each
//! and `vmxinsn: all N killed` (exit 0) or `vmxinsn: K of N killed` (exit 1).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![allow(unsafe_code)]

use core::arch::asm;

use rampart_user::args::split_first;
use rampart_user::{println, sys};

rampart_user::entry!(
    vmxinsn_main,
    "[NAME]: privileged and VMX instructions from ring 3 must fault"
);

/// The instructions, in the order the parent tries them.
const NAMES: [&str; 15] = [
    "vmxon", "vmxoff", "vmread", "vmwrite", "vmlaunch", "invept", "invvpid", "vmfunc", "getsec",
    "rdmsr", "wrmsr", "xsetbv", "hlt", "invd", "mov-cr0",
];
/// What `mov-cr0` tries to load.
const CR0_VALUE: u64 = 0x8005_0033;
/// The exit code of a process the kernel killed for a CPU exception.
const KILLED: i64 = -11;

fn vmxinsn_main(args: &str) -> i64 {
    match split_first(args).0 {
        "" => run_all(),
        name => try_one(name),
    }
}

fn run_all() -> i64 {
    let mut killed = 0;
    for name in NAMES {
        let code = match sys::spawn("vmxinsn", name).and_then(|pid| sys::wait(Some(pid))) {
            Ok((_, code)) => code,
            Err(err) => {
                println!("vmxinsn: {name}: spawn/wait failed: {}", err.name());
                continue;
            }
        };
        println!("vmxinsn: {name}: exit code {code}");
        if code == KILLED {
            killed += 1;
        }
    }
    if killed == NAMES.len() {
        println!("vmxinsn: all {killed} killed");
        0
    } else {
        println!("vmxinsn: {killed} of {} killed", NAMES.len());
        1
    }
}

/// Executes instruction `name` (each must fault in ring 3; the kernel kills this process).
fn try_one(name: &str) -> i64 {
    if !NAMES.contains(&name) {
        println!("usage: vmxinsn [NAME], NAME one of {NAMES:?}");
        return 2;
    }
    println!("vmxinsn: trying {name}");
    // Operands: a zeroed 16-byte descriptor / region pointer on the stack (never touched: each
    // instruction faults before it reads memory, and should one not, it only reads this).
    let region = [0u64; 2];
    let p = region.as_ptr();
    // SAFETY: (every arm) each instruction raises #UD or #GP in ring 3 before it has any
    // effect; the registers it would change are declared, the memory it could read is `region`.
    unsafe {
        match name {
            "vmxon" => asm!("vmxon qword ptr [{p}]", p = in(reg) p, options(nostack, readonly)),
            "vmxoff" => asm!("vmxoff", options(nostack, nomem)),
            "vmread" => {
                asm!("vmread {v}, {f}", f = in(reg) 0u64, v = out(reg) _, options(nostack, nomem))
            }
            "vmwrite" => {
                asm!("vmwrite {f}, {v}", f = in(reg) 0u64, v = in(reg) 0u64, options(nostack, nomem))
            }
            "vmlaunch" => asm!("vmlaunch", options(nostack, nomem)),
            "invept" => {
                asm!("invept {t}, xmmword ptr [{p}]", t = in(reg) 1u64, p = in(reg) p, options(nostack, readonly))
            }
            "invvpid" => {
                asm!("invvpid {t}, xmmword ptr [{p}]", t = in(reg) 1u64, p = in(reg) p, options(nostack, readonly))
            }
            // VMFUNC (0F 01 D4) with EAX = 0: EPTP switching.
            "vmfunc" => {
                asm!(".byte 0x0f, 0x01, 0xd4", in("eax") 0u32, in("ecx") 0u32, options(nostack, nomem))
            }
            // GETSEC (0F 37) with EAX = 0: CAPABILITIES.
            "getsec" => asm!(".byte 0x0f, 0x37", inout("eax") 0u32 => _, options(nostack, nomem)),
            // IA32_TIME_STAMP_COUNTER.
            "rdmsr" => {
                asm!("rdmsr", in("ecx") 0x10u32, out("eax") _, out("edx") _, options(nostack, nomem))
            }
            "wrmsr" => {
                asm!("wrmsr", in("ecx") 0x10u32, in("eax") 0u32, in("edx") 0u32, options(nostack, nomem))
            }
            // XCR0 = x87 | SSE.
            "xsetbv" => {
                asm!("xsetbv", in("ecx") 0u32, in("eax") 3u32, in("edx") 0u32, options(nostack, nomem))
            }
            "hlt" => asm!("hlt", options(nostack, nomem)),
            "invd" => asm!("invd", options(nostack, nomem)),
            // The usual CR0 of a 64-bit kernel (PG, WP, NE, ET, MP, PE): never read first, as
            // reading CR0 faults on its own in ring 3.
            "mov-cr0" => asm!("mov cr0, {c}", c = in(reg) CR0_VALUE, options(nostack, nomem)),
            _ => {}
        }
    }
    println!("vmxinsn: {name} survived");
    1
}
