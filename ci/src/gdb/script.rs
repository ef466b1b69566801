//! The batch gdb session of the `gdb-bochs` boot test and the checks on what gdb printed.
//! Sections are marked with `echo @@name` so each check looks at its own command's output.

use std::path::Path;

/// The kernel function the test breaks at (by name).
pub const BREAK_AT: &str = "rampart_kernel::boot::start";
/// The kernel static the hardware watchpoint watches (the timer interrupt writes it).
pub const WATCHED: &str = "rampart_kernel::time::TICKS";
/// The guest-physical address `monitor ept` is asked about: the kernel's text (execute-only on
/// tigerlake, whose EPT offers it; r-x on CPUs without execute-only pages).
pub const EPT_ADDRESS: &str = "0x4000000";

/// The gdb command file: attach, break, inspect, step, watch, monitor, then the stops of
/// `stops` (hbreak, Ctrl-C, blocked attempts) and `detach`.
pub fn commands(kernel: &Path, port: u16) -> String {
    format!(
        "set pagination off\nset confirm off\nset remotetimeout 30\nset width 0\n\
         file {kernel}\ntarget remote 127.0.0.1:{port}\n\
         echo @@break\\n\nbreak {BREAK_AT}\ncontinue\n\
         echo @@registers\\n\ninfo registers\n\
         echo @@x4i\\n\nx/4i $pc\n\
         echo @@stepi\\n\nprint/x $pc\nstepi\nprint/x $pc\n\
         echo @@bt\\n\nbt\n\
         echo @@watch\\n\nwatch {WATCHED}\ncontinue\n\
         echo @@exits\\n\nmonitor exits\n\
         echo @@ept\\n\nmonitor ept {EPT_ADDRESS}\n\
         echo @@audit\\n\nmonitor audit\n\
         echo @@vmx\\n\nmonitor vmx\n{stops}",
        kernel = kernel.display(),
        stops = super::stops::commands(),
    )
}

/// The gdb command file of the `gdb-kill-bochs` test: attach, break, continue, `kill`.
pub fn kill_commands(kernel: &Path, port: u16) -> String {
    format!(
        "set pagination off\nset confirm off\nset remotetimeout 30\nset width 0\n\
         file {kernel}\ntarget remote 127.0.0.1:{port}\n\
         echo @@break\\n\nbreak {BREAK_AT}\ncontinue\n\
         echo @@kill\\n\nkill\n",
        kernel = kernel.display()
    )
}

/// Where the threads test breaks: the kernel's AP main, so the stop is on vCPU 1 while vCPU 0
/// runs the boot CPU's code.
pub const AP_BREAK_AT: &str = "rampart_kernel::smp::ap_main";

/// The gdb command file of the `gdb-threads-bochs-smp2` test: break where an AP starts, list
/// the vCPUs as threads, read each one's RIP, then `kill`.
pub fn threads_commands(kernel: &Path, port: u16) -> String {
    format!(
        "set pagination off\nset confirm off\nset remotetimeout 30\nset width 0\n\
         file {kernel}\ntarget remote 127.0.0.1:{port}\n\
         echo @@break\\n\nbreak {AP_BREAK_AT}\ncontinue\n\
         echo @@threads\\n\ninfo threads\n\
         echo @@thread1\\n\nthread 1\nprintf \"pc=%#lx\\n\", $pc\n\
         echo @@thread2\\n\nthread 2\nprintf \"pc=%#lx\\n\", $pc\n\
         echo @@kill\\n\nkill\n",
        kernel = kernel.display()
    )
}

/// Failures in the output of [`threads_commands`]: the AP's breakpoint was hit, two threads
/// were listed, and they are stopped at different places (two vCPUs, not one twice).
pub fn check_threads(output: &str) -> Vec<String> {
    let mut failures = Vec::new();
    // The stop is reported on the AP's thread (GDB may show an inlined callee as the frame).
    if !section(output, "break").contains("Thread 2 hit Breakpoint 1") {
        failures.push(format!(
            "gdb threads: the breakpoint at {AP_BREAK_AT} was not hit on thread 2 (vCPU 1)"
        ));
    }
    let listed = section(output, "threads")
        .lines()
        .filter(|l| l.contains("Thread "))
        .count();
    if listed < 2 {
        failures.push(format!(
            "gdb threads: `info threads` listed {listed} threads, want 2"
        ));
    }
    let pc = |name| {
        section(output, name)
            .lines()
            .find_map(|l| l.strip_prefix("pc="))
            .map(str::to_string)
    };
    match (pc("thread1"), pc("thread2")) {
        (Some(a), Some(b)) if a != b => {}
        other => failures.push(format!(
            "gdb threads: want two different RIPs, got {other:?}"
        )),
    }
    if !section(output, "kill").contains("killed]") {
        failures.push("gdb threads: no `[Inferior 1 (process 1) killed]`".to_string());
    }
    failures
}

/// The output of one marked section (empty if the marker is missing).
pub fn section<'a>(output: &'a str, name: &str) -> &'a str {
    let marker = format!("@@{name}\n");
    let Some(start) = output.find(&marker) else {
        return "";
    };
    let rest = &output[start + marker.len()..];
    &rest[..rest.find("@@").unwrap_or(rest.len())]
}

/// The first hex number after `prefix` on a line starting with it.
fn hex_after(text: &str, prefix: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(prefix)?.trim_start();
        let digits = rest.strip_prefix("0x")?;
        let end = digits
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(digits.len());
        u64::from_str_radix(&digits[..end], 16).ok()
    })
}

/// Where execution goes after the first of the `x/4i` lines: the branch target of a call or
/// jmp, otherwise the address on the second line.
fn next_instruction(listing: &str) -> Option<u64> {
    let lines: Vec<&str> = listing.lines().filter(|l| l.contains("0x")).collect();
    let first = lines.first()?;
    let instruction = first.split(":\t").nth(1).unwrap_or("");
    let mut words = instruction.split_whitespace();
    let mnemonic = words.next().unwrap_or("");
    if mnemonic.starts_with("call") || mnemonic.starts_with("jmp") {
        return hex_after(words.next().unwrap_or(""), "");
    }
    hex_after(lines.get(1)?.trim_start_matches("=>"), "")
}

/// Checks gdb's output; returns failures and figures.
pub fn check(output: &str) -> (Vec<String>, Vec<(String, u64)>) {
    let mut failures = Vec::new();
    let mut figures = Vec::new();
    let mut expect = |name: &str, needle: &str| {
        if !section(output, name).contains(needle) {
            failures.push(format!("gdb {name}: `{needle}` not in its output"));
        }
    };
    expect("break", &format!("Breakpoint 1, {BREAK_AT}"));
    expect("registers", &format!("<{BREAK_AT}+"));
    expect("registers", "cs             0x8");
    expect("x4i", "=> 0x");
    expect("bt", "#0  ");
    expect("bt", BREAK_AT);
    expect("watch", &format!("Hardware watchpoint 2: {WATCHED}"));
    expect("watch", "Old value = ");
    expect("watch", "New value = ");
    expect("exits", "exits: total=");
    expect("exits", "EXCEPTION_OR_NMI=");
    expect("ept", &format!("ept {EPT_ADDRESS}: -> {EPT_ADDRESS} --x"));
    expect("audit", "audit: ");
    // The software breakpoint was written into EPT read-only kernel text: allowed and audited.
    expect("audit", "debugger write rule debugger-write");
    expect("vmx", "VMX: ");
    let stepi = section(output, "stepi");
    let before = hex_after(stepi, "$1 =");
    let after = hex_after(stepi, "$2 =");
    let next = next_instruction(section(output, "x4i"));
    match (before, after, next) {
        (Some(b), Some(a), Some(n)) if a != b && a == n => {}
        _ => failures.push(format!(
            "gdb stepi: RIP {before:x?} -> {after:x?}, expected the next instruction {next:x?}"
        )),
    }
    if let Some(total) = hex_or_decimal_after(section(output, "exits"), "exits: total=") {
        figures.push(("gdb_exits_at_watchpoint".to_string(), total));
    }
    failures.extend(super::stops::check(output));
    (failures, figures)
}

fn hex_or_decimal_after(text: &str, prefix: &str) -> Option<u64> {
    let start = text.find(prefix)? + prefix.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "=> 0xffffffff84001fb9 <start+25>:\tmov    $0x3f9,%dx\n   \
        0xffffffff84001fbd <start+29>:\txor    %eax,%eax\n";

    #[test]
    fn finds_the_next_instruction() {
        assert_eq!(next_instruction(LISTING), Some(0xffff_ffff_8400_1fbd));
        let call = "=> 0xffffffff8400204c <s+28>:\tcall   0xffffffff8400d910 <init>\n   \
            0xffffffff84002051 <s+33>:\ttest   %rbx,%rbx\n";
        assert_eq!(next_instruction(call), Some(0xffff_ffff_8400_d910));
    }

    #[test]
    fn sections_and_stepi() {
        let out = format!(
            "@@x4i\n{LISTING}@@stepi\n$1 = 0xffffffff84001fb9\n$2 = 0xffffffff84001fbd\n\
             @@exits\nexits: total=14 CPUID=5\n"
        );
        let (failures, figures) = check(&out);
        assert!(
            !failures.iter().any(|f| f.contains("stepi")),
            "{failures:?}"
        );
        assert!(failures.iter().any(|f| f.contains("gdb break")));
        assert_eq!(figures, vec![("gdb_exits_at_watchpoint".to_string(), 14)]);
        assert_eq!(section(&out, "nothing"), "");
    }
}
