//! COM1 as a TCP socket: the emulator listens (Bochs `mode=socket-server`, QEMU `-serial
//! tcp:...,server=on,wait=on`), the runner connects. A reader thread appends everything the guest
//! sends to `serial.log` (so the log-following supervisor works as with a file-backed port), keeps
//! it in memory for scripted sessions ([`Console::wait_for`]) and, for `cargo xtask run`, copies it
//! to the terminal. [`Console::send_line`] types a line slowly: the guest polls the UART on its
//! timer tick and the 16550 FIFO is 16 bytes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::serial::EscapeFilter;

/// Pause after each typed character.
pub const CHAR_DELAY: Duration = Duration::from_millis(8);
/// Pause between attempts to connect while the emulator starts its listener.
const CONNECT_RETRY: Duration = Duration::from_millis(50);

/// A free TCP port on the loopback interface: bind port 0, note the port, release it. The emulator
/// binds it a moment later (a collision in between would make its listener fail, visibly).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context(|| "cannot bind a loopback port".to_string())?;
    let port = listener
        .local_addr()
        .context(|| "cannot read the bound port".to_string())?
        .port();
    Ok(port)
}

/// What the guest sent so far, and whether the connection has closed.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Received>,
    grew: Condvar,
}

/// The connected guest console.
pub struct Console {
    stream: TcpStream,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

impl Console {
    /// Connects to `port`, retrying until `deadline` while `alive()` says the emulator still runs;
    /// everything received is appended to `log` (and, with `echo`, shown on stdout).
    pub fn connect(
        port: u16,
        log: &Path,
        echo: bool,
        deadline: Instant,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Console> {
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(err) if Instant::now() >= deadline || !alive() => {
                    return Err(Error::Setup(format!(
                        "cannot connect to the guest console on port {port}: {err}"
                    )))
                }
                Err(_) => std::thread::sleep(CONNECT_RETRY),
            }
        };
        let _ = stream.set_nodelay(true);
        let file = File::create(log).context(|| format!("cannot create {}", log.display()))?;
        let shared = Arc::new(Shared::default());
        let reading = stream
            .try_clone()
            .context(|| "cannot clone the console socket".to_string())?;
        let for_reader = Arc::clone(&shared);
        let reader = std::thread::spawn(move || read_loop(reading, file, echo, &for_reader));
        Ok(Console {
            stream,
            shared,
            reader: Some(reader),
        })
    }

    /// Types `line` and a newline, one character at a time.
    pub fn send_line(&self, line: &str) -> std::io::Result<()> {
        type_line(&self.stream, line)
    }

    /// Waits until every needle has appeared after `*cursor` (in any order); then moves `*cursor`
    /// past the last of them. `Err` says which needles are missing and why the wait ended.
    pub fn wait_for(
        &self,
        cursor: &mut usize,
        needles: &[&str],
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut received = self.shared.received.lock().expect("console lock");
        loop {
            match find_all(&received.bytes[*cursor..], needles) {
                Ok(end) => {
                    *cursor += end;
                    return Ok(());
                }
                Err(missing) => {
                    let now = Instant::now();
                    let why = if received.closed {
                        "the console closed"
                    } else if now >= deadline {
                        "timed out"
                    } else {
                        received = self
                            .shared
                            .grew
                            .wait_timeout(received, deadline - now)
                            .expect("console lock")
                            .0;
                        continue;
                    };
                    return Err(format!(
                        "{why} after {:.1} s waiting for `{}`",
                        start.elapsed().as_secs_f64(),
                        missing.join("`, `")
                    ));
                }
            }
        }
    }

    /// Ends the connection: pending and later waits fail at once.
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Ends the connection and waits for the reader to write out the rest.
    pub fn close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Clones the writing side, for an input thread that outlives a borrow of the console.
impl Console {
    pub fn writer(&self) -> Result<ConsoleWriter> {
        let stream = self
            .stream
            .try_clone()
            .context(|| "cannot clone the console socket".to_string())?;
        Ok(ConsoleWriter { stream })
    }
}

/// Types into the console from another thread.
pub struct ConsoleWriter {
    stream: TcpStream,
}

impl ConsoleWriter {
    pub fn send_line(&self, line: &str) -> std::io::Result<()> {
        type_line(&self.stream, line)
    }

    /// Types `bytes` as they are (keys from a raw terminal), one at a time.
    pub fn send_bytes(&self, bytes: &[u8]) -> std::io::Result<()> {
        type_bytes(&self.stream, bytes.iter().copied())
    }
}

fn type_line(stream: &TcpStream, line: &str) -> std::io::Result<()> {
    type_bytes(stream, line.bytes().chain(std::iter::once(b'\n')))
}

fn type_bytes(mut stream: &TcpStream, bytes: impl Iterator<Item = u8>) -> std::io::Result<()> {
    for byte in bytes {
        stream.write_all(&[byte])?;
        std::thread::sleep(CHAR_DELAY);
    }
    Ok(())
}

fn read_loop(mut stream: TcpStream, mut log: File, echo: bool, shared: &Shared) {
    let mut buf = [0u8; 4096];
    let mut filter = EscapeFilter::default();
    loop {
        let count = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let chunk = &buf[..count];
        let _ = log.write_all(chunk);
        let _ = log.flush();
        if echo {
            let shown = filter.filter(chunk);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&shown);
            let _ = out.flush();
        }
        let mut received = shared.received.lock().expect("console lock");
        received.bytes.extend_from_slice(chunk);
        shared.grew.notify_all();
    }
    shared.received.lock().expect("console lock").closed = true;
    shared.grew.notify_all();
}

/// The end offset of the last needle when all occur in `haystack`, else the missing ones.
fn find_all<'a>(haystack: &[u8], needles: &[&'a str]) -> std::result::Result<usize, Vec<&'a str>> {
    let mut end = 0;
    let mut missing = Vec::new();
    for needle in needles {
        match find(haystack, needle.as_bytes()) {
            Some(at) => end = end.max(at + needle.len()),
            None => missing.push(*needle),
        }
    }
    if missing.is_empty() {
        Ok(end)
    } else {
        Err(missing)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_in_any_order() {
        assert_eq!(find_all(b"xx B 29 .. A 29 yy", &["A 29", "B 29"]), Ok(15));
        assert_eq!(find_all(b"A 29", &["A 29", "B 29"]), Err(vec!["B 29"]));
        assert_eq!(find_all(b"abc", &[]), Ok(0));
    }

    /// A fake guest on a local socket: the console connects, sees output, types, and times out.
    #[test]
    fn talks_to_a_socket_guest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let guest = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"[kernel] ready\r\nsh> ").unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while byte[0] != b'\n' {
                peer.read_exact(&mut byte).unwrap();
                line.push(byte[0]);
            }
            peer.write_all(b"you said ").unwrap();
            peer.write_all(&line).unwrap();
            peer.write_all(b"sh> ").unwrap();
            line
        });
        let log = std::env::temp_dir().join(format!("xtask-console-{}.log", std::process::id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let console = Console::connect(port, &log, false, deadline, || true).unwrap();
        let mut cursor = 0;
        let wait = Duration::from_secs(5);
        console.wait_for(&mut cursor, &["sh> "], wait).unwrap();
        console.send_line("uptime").unwrap();
        console
            .wait_for(&mut cursor, &["you said uptime"], wait)
            .unwrap();
        console.wait_for(&mut cursor, &["sh> "], wait).unwrap();
        let err = console
            .wait_for(&mut cursor, &["never"], Duration::from_millis(100))
            .unwrap_err();
        assert!(err.contains("`never`"), "{err}");
        assert_eq!(guest.join().unwrap(), b"uptime\n");
        console.close();
        let logged = std::fs::read(&log).unwrap();
        assert!(logged.starts_with(b"[kernel] ready\r\nsh> you said uptime"));
        std::fs::remove_file(&log).unwrap();
    }

    #[test]
    fn connect_gives_up_when_the_emulator_is_gone() {
        let port = free_port().unwrap();
        let log = std::env::temp_dir().join(format!("xtask-console-x-{}.log", std::process::id()));
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(Console::connect(port, &log, false, deadline, || false).is_err());
    }
}
