//! `badptr`: system calls with bad user pointers must fail with EFAULT (and an unknown number
//! with ENOSYS), never fault the kernel. Prints one line per case and a total.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![allow(unsafe_code)]

use rampart_kernel_abi::syscall::{Errno, Syscall};
use rampart_user::{println, sys};

rampart_user::entry!(
    badptr_main,
    "system calls with bad user pointers must fail with EFAULT"
);

/// The first kernel-half address.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// A canonical user address nothing is mapped at (programs live near 0x400000).
const UNMAPPED: u64 = 0x0000_5000_0000_0000;
/// A pointer whose end (plus a few bytes) wraps around to low addresses.
const WRAPS: u64 = u64::MAX - 2;
/// A system call number past the table.
const UNKNOWN_SYSCALL: u64 = 999;

/// How many cases [`cases`] returns.
const CASES: usize = 20;

struct Case {
    name: &'static str,
    number: u64,
    args: [u64; 6],
    want: Errno,
}

fn badptr_main(_args: &str) -> i64 {
    let buffer = [0u8; 16];
    let user = buffer.as_ptr() as u64;
    let text = badptr_main as fn(&str) -> i64 as usize as u64;
    let name = "hello";
    // A child to wait for: `spin x 0` prints nothing and exits at once.
    let child = match sys::spawn("spin", "x 0") {
        Ok(pid) => pid,
        Err(err) => {
            println!("badptr: cannot spawn a child: {}", err.name());
            return 1;
        }
    };
    let cases = cases(user, text, child, name.as_ptr() as u64);
    let mut failed = 0;
    for case in &cases {
        // SAFETY: every pointer given is invalid, read-only (text) or only read by the kernel;
        // the kernel must refuse the invalid ones without writing anything.
        let raw = unsafe { sys::raw(case.number, case.args) };
        if raw == case.want.to_raw() {
            println!("badptr: {}: {} ok", case.name, case.want.name());
        } else {
            failed += 1;
            let got = match sys::decode(raw) {
                Ok(value) => format_ok(value),
                Err(err) => err.name(),
            };
            println!(
                "badptr: {}: expected {}, got {} (raw {:#x})",
                case.name,
                case.want.name(),
                got,
                raw
            );
        }
    }
    // Reap the child (it may already be gone if a wait case consumed it).
    let _ = sys::wait(Some(child));
    if failed > 0 {
        println!("badptr: {failed} of {} cases failed", cases.len());
        return 1;
    }
    println!("badptr: all {} cases ok", cases.len());
    0
}

/// The cases: `user` a writable buffer of ours, `text` our own code (read-only), `child` a pid
/// to wait for, `name` the address of a short program name.
fn cases(user: u64, text: u64, child: u64, name: u64) -> [Case; CASES] {
    let write = Syscall::Write as u64;
    let read = Syscall::Read as u64;
    let wait = Syscall::Wait as u64;
    let spawn = Syscall::Spawn as u64;
    [
        case("write null", write, [1, 0, 8, 0, 0, 0]),
        case("write kernel", write, [1, KERNEL_HALF, 8, 0, 0, 0]),
        case("write wrapping", write, [1, user, u64::MAX - 4, 0, 0, 0]),
        case("write wrapping end", write, [1, WRAPS, 8, 0, 0, 0]),
        case("write unmapped", write, [1, UNMAPPED, 8, 0, 0, 0]),
        case("read null", read, [0, 0, 8, 0, 0, 0]),
        case("read kernel", read, [0, KERNEL_HALF, 8, 0, 0, 0]),
        case("read wrapping", read, [0, user, u64::MAX - 4, 0, 0, 0]),
        case("read unmapped", read, [0, UNMAPPED, 8, 0, 0, 0]),
        case("read into text", read, [0, text, 8, 0, 0, 0]),
        case("wait kernel", wait, [child, KERNEL_HALF, 0, 0, 0, 0]),
        case("wait unmapped", wait, [child, UNMAPPED, 0, 0, 0, 0]),
        case("spawn null name", spawn, [0, 5, user, 0, 0, 0]),
        case("spawn kernel name", spawn, [KERNEL_HALF, 5, 0, 0, 0, 0]),
        // Short enough to pass the length limit (E2BIG), and end = start + len wraps past 0.
        case("spawn wrapping args", spawn, [name, 5, WRAPS, 5, 0, 0]),
        case("spawn unmapped args", spawn, [name, 5, UNMAPPED, 4, 0, 0]),
        case(
            "processes kernel",
            Syscall::Processes as u64,
            [KERNEL_HALF, 4, 0, 0, 0, 0],
        ),
        case(
            "programs kernel",
            Syscall::Programs as u64,
            [KERNEL_HALF, 4096, 0, 0, 0, 0],
        ),
        case(
            "programs into text",
            Syscall::Programs as u64,
            [text, 4096, 0, 0, 0, 0],
        ),
        Case {
            name: "unknown syscall",
            number: UNKNOWN_SYSCALL,
            args: [0; 6],
            want: Errno::NoSys,
        },
    ]
}

fn case(name: &'static str, number: u64, args: [u64; 6]) -> Case {
    Case {
        name,
        number,
        args,
        want: Errno::Fault,
    }
}

fn format_ok(_value: u64) -> &'static str {
    "success"
}
