//! `cargo xtask run` on a pseudo-terminal, as a person would use it: the banner comes first, the
//! terminal turns raw, typed keys are echoed once (by the guest), Ctrl-C goes to the guest,
//! `Ctrl-A h` helps, `Ctrl-A x` quits with exit code 0 and the terminal settings come back.
//!
//! It boots the native kernel under QEMU TCG (a few seconds) from an image already built with
//! `cargo xtask image --mode native`; it skips itself, saying why, when QEMU, OVMF or that image
//! is missing (a fresh checkout has no image: `cargo xtask test` runs host tests before building).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::termios::tcgetattr;

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
const BOOT_LIMIT: Duration = Duration::from_secs(90);
const STEP_LIMIT: Duration = Duration::from_secs(15);
const KEY_DELAY: Duration = Duration::from_millis(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Why the test cannot run here, if it cannot.
fn missing(image: &Path) -> Option<String> {
    let qemu = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("qemu-system-x86_64").exists())
    });
    if !qemu {
        return Some("qemu-system-x86_64 is not installed".into());
    }
    if !Path::new(OVMF).exists() {
        return Some(format!("{OVMF} is missing"));
    }
    if !image.exists() {
        return Some(format!(
            "{} is missing (run `cargo xtask image --mode native`)",
            image.display()
        ));
    }
    None
}

/// Everything the runner wrote to the terminal, filled by a reader thread.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Screen {
    fn follow(&self, mut master: std::fs::File) {
        let screen = self.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with EIO once the runner and the emulator have closed the terminal.
            while let Ok(count @ 1..) = master.read(&mut buffer) {
                screen.0.lock().unwrap().extend_from_slice(&buffer[..count]);
            }
        });
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[mark..]).into_owned()
    }

    /// Waits until `needle` appears after `mark`.
    fn wait_for(&self, mark: usize, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.since(mark).contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no `{needle}` within {limit:?}; the terminal showed:\n{}",
                self.since(0)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn type_keys(master: &mut std::fs::File, keys: &[u8]) {
    use std::io::Write;
    for key in keys {
        master.write_all(&[*key]).unwrap();
        std::thread::sleep(KEY_DELAY);
    }
}

#[test]
fn raw_console_echoes_once_and_ctrl_a_x_restores_the_terminal() {
    let image = repo_root().join("target/rampart/rampart-native.img");
    if let Some(why) = missing(&image) {
        eprintln!("console_pty: SKIPPED: {why}");
        return;
    }
    let pty = nix::pty::openpty(None, None).unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    // Its own target directory: its own runner lock and run directory, so this works while a
    // `cargo xtask test` in this checkout holds the lock.
    let target = std::env::temp_dir().join(format!("xtask-console-pty-{}", std::process::id()));
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let runner = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--emulator", "qemu", "--mode", "native", "--image"])
        .arg(&image)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave))
        .spawn()
        .unwrap();
    let mut runner = Runner(runner);
    let mut master = std::fs::File::from(pty.master);
    let screen = Screen::default();
    screen.follow(master.try_clone().unwrap());

    screen.wait_for(0, "sh> ", BOOT_LIMIT);
    let first = screen
        .since(0)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("raw mode") && first.contains("Ctrl-A x quits"),
        "{first}"
    );
    assert_ne!(tcgetattr(&pty.slave).unwrap(), before, "raw during the run");

    let mark = screen.len();
    type_keys(&mut master, b"hello\r");
    screen.wait_for(mark, "unknown command 'hello'", STEP_LIMIT);
    let typed = screen.since(mark);
    assert!(typed.starts_with("hello\r"), "echoed once: {typed:?}");
    assert_eq!(typed.matches("hello").count(), 2, "{typed:?}");

    let mark = screen.len();
    type_keys(&mut master, b"\x03\x01h");
    screen.wait_for(mark, "Ctrl-A Ctrl-A", STEP_LIMIT);
    assert!(
        runner.0.try_wait().unwrap().is_none(),
        "Ctrl-C went to the guest"
    );

    type_keys(&mut master, b"\x01x");
    screen.wait_for(mark, "quit (Ctrl-A x)", STEP_LIMIT);
    let code = runner.wait(STEP_LIMIT);
    let _ = std::fs::remove_dir_all(&target);
    assert_eq!(code, Some(0), "{}", screen.since(0));
    assert_eq!(tcgetattr(&pty.slave).unwrap(), before, "terminal restored");
}

/// The runner, killed if the test fails before it exits (its emulator dies with it).
struct Runner(std::process::Child);

impl Runner {
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the runner did not exit within {limit:?}");
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
