//! `faulty null|gp|ud|div|text|vmcall`: causes one CPU exception in ring 3 (`vmcall`: #UD,
//! natively because VMX is off, under Rampart because hypercalls are for ring 0 only); the kernel must kill this
//! process (exit code -11) and nothing else. Each fault is raised with `asm!` so the compiler
//! can neither fold it nor treat it as undefined behaviour.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![allow(unsafe_code)]

use core::arch::asm;

use rampart_user::args::split_first;
use rampart_user::println;

rampart_user::entry!(
    faulty_main,
    "null|gp|ud|div|text|vmcall: one CPU exception in ring 3"
);

/// A non-canonical address (bits 63:47 not a sign extension): any access is #GP, not #PF.
const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;

fn faulty_main(args: &str) -> i64 {
    let (mode, _) = split_first(args);
    let target = core::hint::black_box(0u64);
    // Each instruction below is meant to fault; the kernel kills this process before it could
    // go on. Should it go on, no Rust-visible memory changed (the addresses are unmapped,
    // non-canonical or our own text) and we report it.
    match mode {
        // SAFETY: writes address 0, which is never mapped in a user address space.
        "null" => unsafe {
            asm!("mov byte ptr [{p}], 1", p = in(reg) target, options(nostack));
        },
        // SAFETY: reads a non-canonical address: #GP before any memory is accessed.
        "gp" => unsafe {
            let _value: u64;
            asm!("mov {v}, qword ptr [{p}]", p = in(reg) NON_CANONICAL, v = out(reg) _value,
                options(nostack, readonly));
        },
        // SAFETY: ud2 only raises #UD.
        "ud" => unsafe {
            asm!("ud2", options(nostack, nomem));
        },
        // SAFETY: divides by a zero register: #DE; only RAX/RDX (declared) would change.
        "div" => unsafe {
            asm!("div {d}", d = in(reg) target, inout("rax") 1u64 => _, inout("rdx") 0u64 => _,
                options(nostack, nomem));
        },
        // SAFETY: writes one byte of this function's own text, mapped read-execute: #PF.
        // Were it writable, the byte lies in code that already ran (the function prologue).
        "text" => unsafe {
            let code = faulty_main as fn(&str) -> i64 as usize as u64;
            asm!("mov byte ptr [{p}], 0xcc", p = in(reg) code, options(nostack));
        },
        // SAFETY: VMCALL from ring 3 raises #UD (natively and under Rampart); RAX = 0 would
        // only ask for the version if it did not.
        "vmcall" => unsafe {
            asm!("vmcall", inout("rax") 0u64 => _, options(nostack, nomem));
        },
        _ => {
            println!("usage: faulty null|gp|ud|div|text|vmcall");
            return 2;
        }
    }
    println!("faulty: survived");
    1
}
