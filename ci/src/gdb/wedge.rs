//! `gdb-step-wedge-bochs`: the stub must answer whatever state a debugger leaves. First the
//! cause of the red-team's step hang, made deterministic: the guest runs to its shell, Ctrl-C
//! stops it in the kernel, the debugger writes `cli; hlt` at RIP and steps over both. A step
//! over a HLT with interrupts off never completed (the single-step trap comes after the HLT,
//! and the stub stopped polling for Ctrl-C while stepping); it is also where a stepped
//! instruction that faults ends up, as its handler runs with TF clear and panics. Now the HLT
//! ends the step. Then the guest continues into its `cli; hlt` and Ctrl-C must still stop it. Then the reproduction
//! itself (`step_hang_packets.txt`, from the issue: hostile packets ending in a single step),
//! replayed with its procedure on that dead guest: after each line `qAttached`, whose `1` must
//! come within 8 s, or else Ctrl-C must bring a stop reply, or at least `?`. Then `kill`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::emulator::console::Console;

const REPRO: &str = include_str!("step_hang_packets.txt");
const REPLY_WAIT: Duration = Duration::from_secs(8);
/// How long one step may take.
const STEP_WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
/// The hypervisor's line once `k` stopped the machine.
const KILLED: &str = "gdb: killed by the debugger";
/// The guest's shell is up.
const SHELL_UP: &str = "[init] starting sh";
/// Offset of RIP in a `g` reply: sixteen 8-byte GPRs, as hex (gdbstub_arch x86-64 layout).
const RIP_HEX_OFFSET: usize = 16 * 16;

/// The packet framing for `body` (`$body#checksum`).
fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

/// Expands the remote protocol's run-length encoding: `c*n` is `c` and `n - 29` more copies.
fn expand(body: &str) -> String {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '*' {
            let count = chars.next().map_or(0, |n| (n as usize).saturating_sub(29));
            let last = out.chars().last().unwrap_or('0');
            out.extend(std::iter::repeat_n(last, count));
        } else {
            out.push(c);
        }
    }
    out
}

/// Complete packets (`$...#xx`) in `bytes`, bodies only, run-length encoding expanded.
fn packets(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(start) = rest.iter().position(|&b| b == b'$') {
        let Some(end) = rest[start..].iter().position(|&b| b == b'#') else {
            break;
        };
        let end = start + end;
        if rest.len() < end + 3 {
            break;
        }
        out.push(expand(&String::from_utf8_lossy(&rest[start + 1..end])));
        rest = &rest[end + 3..];
    }
    out
}

/// A COM2 link that acknowledges every packet the stub sends.
struct Link {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Link {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("COM2 write: {e}"))
    }

    /// Reads until a packet body satisfies `done`, or `wait` passes; acknowledges packets.
    fn until(&mut self, wait: Duration, done: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buffer = [0u8; 4096];
        let _ = self.stream.set_read_timeout(Some(POLL));
        while Instant::now() < deadline {
            match self.stream.read(&mut buffer) {
                Ok(0) => return None,
                Ok(n) => self.received.extend_from_slice(&buffer[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
            let found = packets(&self.received);
            if found.is_empty() {
                continue;
            }
            // Keep what follows the last complete packet.
            let last_hash = self.received.iter().rposition(|&b| b == b'#').unwrap_or(0);
            let keep = self
                .received
                .split_off((last_hash + 3).min(self.received.len()));
            self.received = keep;
            for _ in &found {
                let _ = self.stream.write_all(b"+");
            }
            if let Some(hit) = found.into_iter().find(|body| done(body)) {
                return Some(hit);
            }
        }
        None
    }
}

fn is_stop(body: &str) -> bool {
    body.starts_with('T') || body.starts_with('S')
}

/// Runs the check on the stub's COM2 `stream` (drained, raw packets done); `log` gets the
/// transcript. Returns the failures.
pub fn run(console: &Console, stream: TcpStream, log: &mut String) -> Vec<String> {
    let mut link = Link {
        stream,
        received: Vec::new(),
    };
    let result = deterministic(&mut link, console, log)
        .and_then(|()| replay(&mut link, log))
        .and_then(|()| link.send(&packet("k")))
        .and_then(|()| {
            let mut cursor = 0;
            console.wait_for(&mut cursor, &[KILLED], REPLY_WAIT * 4)
        });
    match result {
        Ok(()) => Vec::new(),
        Err(failure) => vec![failure],
    }
}

fn replay(link: &mut Link, log: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;
    let lines = REPRO
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (mut answered, mut interrupted) = (0, 0);
    for (index, line) in lines.enumerate() {
        let bytes = (0..line.len() / 2)
            .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("repro line {index}: {e}"))?;
        link.send(&bytes)?;
        link.send(&packet("qAttached"))?;
        if link.until(REPLY_WAIT, |b| b == "1").is_some() {
            answered += 1;
            continue;
        }
        link.send(&[0x03])?;
        if link.until(REPLY_WAIT, is_stop).is_none() {
            link.send(&packet("?"))?;
            if link.until(REPLY_WAIT, is_stop).is_none() {
                return Err(format!(
                    "step-hang reproduction: no answer to qAttached, Ctrl-C or `?` after line {index} ({} bytes)",
                    bytes.len()
                ));
            }
        }
        interrupted += 1;
    }
    let _ = writeln!(
        log,
        "# reproduction replayed: {answered} lines answered at once, {interrupted} after Ctrl-C or `?`"
    );
    Ok(())
}

/// `cli; hlt; jmp $-3`: a CPU that halts with interrupts off, for good.
const HALT_FOREVER: &str = "faf4ebfc";
/// Offset of CS (a 32-bit field after RIP and EFLAGS) in a `g` reply, as hex.
const CS_HEX_OFFSET: usize = RIP_HEX_OFFSET + 16 + 8;
const MAX_INTERRUPTS: usize = 10;

/// Little-endian hex (as in `g` replies) to a number.
fn le_hex(hex: &str) -> Option<u64> {
    (0..hex.len() / 2).rev().try_fold(0u64, |value, i| {
        let byte = u64::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        Some(value << 8 | byte)
    })
}

/// Stops the running guest with Ctrl-C until it stops at CPL0; returns its RIP.
fn stop_in_kernel(link: &mut Link) -> Result<u64, String> {
    for _ in 0..MAX_INTERRUPTS {
        link.send(&[0x03])?;
        link.until(REPLY_WAIT * 2, is_stop)
            .ok_or("Ctrl-C at the shell: no stop reply")?;
        link.send(&packet("g"))?;
        let registers = link
            .until(REPLY_WAIT, |b| b.len() > CS_HEX_OFFSET + 8)
            .ok_or("`g`: no register reply")?;
        let rip = le_hex(&registers[RIP_HEX_OFFSET..RIP_HEX_OFFSET + 16]);
        let cs = le_hex(&registers[CS_HEX_OFFSET..CS_HEX_OFFSET + 8]);
        match (rip, cs) {
            (Some(rip), Some(cs)) if cs & 3 == 0 => return Ok(rip),
            _ => link.send(&packet("c"))?,
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(format!(
        "{MAX_INTERRUPTS} Ctrl-Cs never stopped the guest at CPL0"
    ))
}

/// Steps once; the stop reply must come within [`STEP_WAIT`].
fn step(link: &mut Link, log: &mut String, what: &str) -> Result<(), String> {
    use std::fmt::Write as _;
    let started = Instant::now();
    link.send(&packet("s"))?;
    let stop = link.until(STEP_WAIT, is_stop);
    let _ = writeln!(
        log,
        "# step over {what}: {stop:?} after {} ms",
        started.elapsed().as_millis()
    );
    if stop.is_none() {
        link.send(&[0x03])?;
        let interrupted = link.until(REPLY_WAIT, is_stop).is_some();
        return Err(format!(
            "the step over {what} never answered within {} s (Ctrl-C afterwards answered: {interrupted})",
            STEP_WAIT.as_secs()
        ));
    }
    Ok(())
}

fn deterministic(link: &mut Link, console: &Console, log: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;
    link.send(&packet("qSupported:swbreak+"))?;
    link.until(REPLY_WAIT, |_| true);
    link.send(&packet("c"))?;
    let mut cursor = 0;
    console.wait_for(&mut cursor, &[SHELL_UP], Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_secs(1));
    let rip = stop_in_kernel(link)?;
    // The debugger's write into kernel text is allowed and audited (rule debugger-write).
    link.send(&packet(&format!("M{rip:x},4:{HALT_FOREVER}")))?;
    link.until(REPLY_WAIT, |b| b == "OK")
        .ok_or("`M` of `cli; hlt` at RIP: not written")?;
    let _ = writeln!(log, "# wrote cli; hlt; jmp at RIP {rip:#x}");
    step(link, log, "cli")?;
    step(link, log, "hlt with interrupts off")?;
    link.send(&packet("?"))?;
    link.until(REPLY_WAIT, is_stop)
        .ok_or("`?` after the step: no stop reply")?;
    // Free-running into `cli; hlt`: the Ctrl-C poll must still reach it.
    link.send(&packet("c"))?;
    std::thread::sleep(Duration::from_secs(2));
    link.send(&[0x03])?;
    link.until(REPLY_WAIT * 2, is_stop)
        .ok_or("Ctrl-C while the guest halts with interrupts off: no stop reply")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_splits_packets() {
        assert_eq!(packet("qAttached"), b"$qAttached#8f");
        assert_eq!(packet("s"), b"$s#73");
        assert_eq!(
            packets(b"+$T05thread:01;#07+$1#31$par"),
            ["T05thread:01;", "1"]
        );
    }

    #[test]
    fn the_reproduction_parses_to_its_385_lines() {
        let lines = REPRO
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(lines, 385);
    }
}
