//! `sh`: the interactive shell on the console (see README.md, "The shell").
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::args::{parse_int, split_first, words};
use rampart_user::console::read_line;
use rampart_user::process::state_name;
use rampart_user::{print, println, sys, Errno, ProcessInfo};

rampart_user::entry!(sh_main, "the interactive shell");

const PROMPT: &str = "sh> ";
const LINE_MAX: usize = 256;
const MAX_PROCESSES: usize = 32;
/// Room for the program listing: 32 lines of name, tab, description and newline.
const PROGRAMS_MAX: usize = 32 * 108;
const HELP: &str = "\
commands:
  help                 this text and the initrd's programs
  ps                   list processes (CPU: where each runs or last ran)
  run PROG [ARGS] [&]  run an initrd program and wait for it (& = in the background)
  kill PID             end a process
  uptime               milliseconds since boot
  echo TEXT            print TEXT
  exit [CODE]          leave the shell";

fn sh_main(_args: &str) -> i64 {
    let mut buf = [0u8; LINE_MAX];
    loop {
        print!("{PROMPT}");
        let Some(line) = read_line(&mut buf) else {
            println!("sh: console read failed");
            return 1;
        };
        if let Some(code) = execute(line) {
            return code;
        }
    }
}

/// Runs one command line; `Some(code)` when the shell should exit.
fn execute(line: &str) -> Option<i64> {
    let (command, rest) = split_first(line);
    match command {
        "" => {}
        "help" => help(),
        "ps" => ps(),
        "run" => run(rest),
        "kill" => kill(rest),
        "uptime" => println!("uptime: {} ms", sys::uptime()),
        "echo" => println!("{rest}"),
        "exit" => return Some(exit_code(rest)),
        other => println!("sh: unknown command '{other}'"),
    }
    None
}

/// The commands, then each initrd program with the description it carries (read from the
/// initrd by the kernel: no list of programs here).
fn help() {
    println!("{HELP}");
    println!("programs (run NAME [ARGS]):");
    for_each_program(|name, description| println!("  {name:<10} {description}"));
}

/// Calls `visit(name, description)` for each program the kernel lists.
fn for_each_program(mut visit: impl FnMut(&str, &str)) {
    let mut buf = [0u8; PROGRAMS_MAX];
    let listing = match sys::programs(&mut buf) {
        Ok(length) => core::str::from_utf8(&buf[..length]).unwrap_or(""),
        Err(err) => {
            println!("sh: cannot list the programs: {}", err.name());
            return;
        }
    };
    for line in listing.lines() {
        let (name, description) = line.split_once('\t').unwrap_or((line, ""));
        visit(name, description);
    }
}

fn exit_code(rest: &str) -> i64 {
    match words(rest).next() {
        None => 0,
        Some(word) => parse_int(word).unwrap_or_else(|| {
            println!("sh: exit: bad code '{word}', using 1");
            1
        }),
    }
}

fn ps() {
    let mut table = [ProcessInfo::EMPTY; MAX_PROCESSES];
    let count = match sys::processes(&mut table) {
        Ok(count) => count.min(MAX_PROCESSES),
        Err(err) => {
            println!("sh: ps: {}", err.name());
            return;
        }
    };
    println!("PID PPID CPU STATE TICKS NAME");
    for p in &table[..count] {
        println!(
            "{} {} {} {} {} {}",
            p.pid,
            p.parent,
            p.cpu,
            state_name(p.state),
            p.ticks,
            p.name()
        );
    }
}

/// `run PROG [ARGS] [&]`.
fn run(rest: &str) {
    let rest = rest.trim_end_matches(' ');
    let (rest, background) = match rest.strip_suffix('&') {
        Some(before) => (before.trim_end_matches(' '), true),
        None => (rest, false),
    };
    let (program, args) = split_first(rest);
    if program.is_empty() {
        println!("sh: usage: run PROG [ARGS] [&]");
        return;
    }
    let pid = match sys::spawn(program, args) {
        Ok(pid) => pid,
        Err(err) => {
            println!("sh: run {program}: {}", err.name());
            if err == Errno::NoEntry {
                print!("sh: the programs are:");
                for_each_program(|name, _| print!(" {name}"));
                println!();
            }
            return;
        }
    };
    if background {
        println!("[sh] started {program} as pid {pid}");
        return;
    }
    match sys::wait(Some(pid)) {
        Ok((_, code)) => println!("[sh] {program} exited with code {code}"),
        Err(err) => println!("sh: wait {program}: {}", err.name()),
    }
}

fn kill(rest: &str) {
    let Some(pid) = words(rest).next().and_then(parse_int) else {
        println!("sh: usage: kill PID");
        return;
    };
    let pid = pid as u64;
    if let Err(err) = sys::kill(pid) {
        println!("sh: kill {pid}: {}", err.name());
        return;
    }
    // Reap it if it is one of ours (a background job); otherwise wait says ECHILD at once.
    match sys::wait(Some(pid)) {
        Ok((_, code)) => println!("[sh] pid {pid} exited with code {code}"),
        Err(_) => println!("[sh] killed pid {pid}"),
    }
}
