//! The line to the hypervisor's GDB stub: the emulator's COM2 socket (Bochs takes exactly one
//! client, and cannot reuse a just-closed port), drained of the text OVMF printed on COM2
//! before the hypervisor took it over, and a relay that gives gdb a port of its own.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pause between connection attempts while the emulator starts its COM2 listener.
const CONNECT_RETRY: Duration = Duration::from_millis(100);
/// COM2 counts as drained after this long without a byte.
pub const QUIET: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(50);

/// Connects to the emulator's COM2 server on `port`, retrying until `deadline`.
pub fn connect(port: u16, deadline: Instant) -> Result<TcpStream, String> {
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) if Instant::now() >= deadline => {
                return Err(format!("cannot connect to COM2 on port {port}: {err}"))
            }
            Err(_) => std::thread::sleep(CONNECT_RETRY),
        }
    }
}

/// Reads and discards until COM2 has been quiet for [`QUIET`]; returns the bytes discarded.
pub fn drain(stream: &mut TcpStream) -> usize {
    let mut discarded = 0;
    let mut quiet_since = Instant::now();
    let mut buffer = [0u8; 4096];
    let _ = stream.set_read_timeout(Some(POLL));
    while quiet_since.elapsed() < QUIET {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                discarded += n;
                quiet_since = Instant::now();
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    discarded
}

/// True once `reply` is a complete answer: a lone ack/nack, or a packet with its checksum.
fn complete(reply: &[u8]) -> bool {
    match reply {
        [b'-'] => true,
        _ => reply.len() >= 3 && reply[reply.len() - 3] == b'#',
    }
}

/// Sends raw bytes and collects the reply until it is complete or `wait` passes.
pub fn exchange(stream: &mut TcpStream, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut reply = Vec::new();
    if stream.write_all(bytes).is_err() {
        return reply;
    }
    let deadline = Instant::now() + wait;
    let mut buffer = [0u8; 1024];
    let _ = stream.set_read_timeout(Some(POLL));
    while Instant::now() < deadline && !complete(&reply) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    reply
}

/// A loopback port for gdb to connect to (bound early: gdb may connect before the stub waits).
pub fn listen() -> Result<(TcpListener, u16), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a relay port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("relay port: {e}"))?
        .port();
    Ok((listener, port))
}

/// Everything relayed so far, one stream per direction (packets are split across reads: the
/// stub writes COM2 byte by byte), for a test to follow the session.
#[derive(Clone, Default)]
pub struct Traffic {
    pub from_gdb: Arc<Mutex<Vec<u8>>>,
    pub from_stub: Arc<Mutex<Vec<u8>>>,
}

/// Once gdb connects to `listener`, copies bytes both ways between it and the stub, logging
/// the traffic to `log` (`> ` from gdb, `< ` from the stub) and keeping it in the returned
/// [`Traffic`]. When the stub's side closes (the emulator stopped), gdb's side is closed too.
pub fn relay(listener: TcpListener, stub: TcpStream, log: &Path) -> Result<Traffic, String> {
    let log = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let log = Arc::new(Mutex::new(log));
    let traffic = Traffic::default();
    let kept = traffic.clone();
    let _ = stub.set_read_timeout(None);
    std::thread::spawn(move || {
        let Ok((gdb, _)) = listener.accept() else {
            return;
        };
        let _ = gdb.set_nodelay(true);
        let (Ok(stub_in), Ok(gdb_in)) = (stub.try_clone(), gdb.try_clone()) else {
            return;
        };
        let to_stub = (Arc::clone(&log), Arc::clone(&kept.from_gdb));
        std::thread::spawn(move || copy(gdb_in, stub, &to_stub, b"> ", false));
        copy(stub_in, gdb, &(log, kept.from_stub), b"< ", true);
    });
    Ok(traffic)
}

type Sink = (Arc<Mutex<File>>, Arc<Mutex<Vec<u8>>>);

fn copy(mut from: TcpStream, mut to: TcpStream, sink: &Sink, tag: &[u8], close: bool) {
    let (log, kept) = sink;
    let mut buffer = [0u8; 4096];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Ok(mut log) = log.lock() {
            let _ = log.write_all(tag);
            let _ = log.write_all(&buffer[..n]);
            let _ = log.write_all(b"\n");
        }
        if let Ok(mut kept) = kept.lock() {
            kept.extend_from_slice(&buffer[..n]);
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    if close {
        let _ = to.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_complete_at_a_nack_or_a_checksum() {
        assert!(complete(b"-"));
        assert!(complete(b"+$E01#a6"));
        assert!(!complete(b"+"));
        assert!(!complete(b"+$T05thr"));
    }
}
