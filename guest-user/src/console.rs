//! The console: `print!`/`println!` to fd 1 (each call one `write`, so lines of concurrent
//! processes do not tear mid-line) and line input from fd 0.

use core::fmt::{self, Write};

use crate::fmt::FixedBuf;
use crate::sys;

pub const STDIN: u64 = 0;
pub const STDOUT: u64 = 1;
pub const STDERR: u64 = 2;
/// One formatted `print!` is written in one piece when it fits in this many bytes.
const PRINT_BUFFER: usize = 512;

/// Writes all of `bytes` to `fd` (the console may take them in pieces).
pub fn write_all(fd: u64, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match sys::write(fd, bytes) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = &bytes[n.min(bytes.len())..],
        }
    }
}

/// Formats `args` into one buffer and writes it to `fd` (in chunks if it is longer).
pub fn print_to(fd: u64, args: fmt::Arguments<'_>) {
    struct Chunked<'a> {
        fd: u64,
        buf: &'a mut FixedBuf<PRINT_BUFFER>,
    }
    impl fmt::Write for Chunked<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for piece in s.as_bytes().chunks(PRINT_BUFFER) {
                if self.buf.as_bytes().len() + piece.len() > PRINT_BUFFER {
                    write_all(self.fd, self.buf.as_bytes());
                    self.buf.clear();
                }
                // Fits now: the buffer is empty or has room.
                let text = core::str::from_utf8(piece).unwrap_or("?");
                self.buf.write_str(text)?;
            }
            Ok(())
        }
    }
    let mut buf = FixedBuf::new();
    let _ = Chunked { fd, buf: &mut buf }.write_fmt(args);
    write_all(fd, buf.as_bytes());
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_to($crate::console::STDOUT, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {
        $crate::console::print_to($crate::console::STDOUT, format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::console::print_to($crate::console::STDERR, format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Reads one line from the console into `buf` (without its `\n`). `None` when the console
/// fails; a line longer than `buf` is cut.
pub fn read_line(buf: &mut [u8]) -> Option<&str> {
    let mut len = 0;
    loop {
        let mut chunk = [0u8; 128];
        let n = sys::read(STDIN, &mut chunk).ok()?;
        if n == 0 {
            sys::yield_now();
            continue;
        }
        let got = &chunk[..n.min(chunk.len())];
        let (body, done) = match got.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => (&got[..end], true),
            None => (got, false),
        };
        let take = body.len().min(buf.len() - len);
        buf[len..len + take].copy_from_slice(&body[..take]);
        len += take;
        if done {
            break;
        }
    }
    let line = &buf[..len];
    Some(match core::str::from_utf8(line) {
        Ok(text) => text,
        Err(err) => core::str::from_utf8(&line[..err.valid_up_to()]).unwrap_or(""),
    })
}
