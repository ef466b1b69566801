//! `cargo xtask gdb`: boots Rampart under Bochs with the hypervisor's GDB stub on (`gdb = on`)
//! and COM2 as a socket, and starts `gdb` on the guest kernel's symbols, connected.
//!
//! Two processes, so that Ctrl-C at the gdb prompt reaches gdb alone: the runner starts
//! `xtask gdb-serve` in a process group of its own (it boots Bochs, shows COM1 on the
//! terminal, drains OVMF's text from COM2 and relays COM2 to a loopback port), then turns
//! itself into `gdb` (exec), which owns the terminal. The server dies with gdb (parent-death
//! signal), and Bochs with the server.
//!
//! QEMU/KVM (untested here: no VT-x on these machines): give the guest a second serial port,
//! `-serial tcp:127.0.0.1:PORT,server=on,wait=on` after COM1's, and point gdb at PORT once the
//! hypervisor logs `gdb: waiting for debugger on COM2`; whatever OVMF printed on COM2 before
//! must be read and discarded first (this runner's `link::drain`).

pub mod drive;
pub mod link;
pub mod script;
pub mod stops;
pub mod test;
pub mod wedge;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{GdbArgs, GdbServeArgs};
use crate::emulator::{self, console, Emulator, Input, Launch, DISK_IMAGE, SERIAL_LOG};
use crate::error::{Error, Result};
use crate::image::{self, Contents, Mode};
use crate::{build, paths};

/// The boot config line that turns the stub on.
pub const GDB_ON: &str = "gdb = on\n";
const RUN_NAME: &str = "gdb";
/// An interactive session may last long.
const SESSION_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The normal hv image contents with the stub turned on.
pub fn contents() -> Result<Contents> {
    let mut contents = Contents::from_build(Mode::Hv)?;
    contents.boot_cfg.push_str(GDB_ON);
    Ok(contents)
}

/// `cargo xtask gdb [--cpu MODEL]`.
pub fn command(args: GdbArgs) -> Result<u8> {
    let GdbArgs { cpu } = args;
    crate::setup::ensure(&[crate::setup::Need::Bochs])?;
    build::build()?;
    let run_dir = paths::run_dir(RUN_NAME);
    emulator::fresh_run_dir(&run_dir)?;
    image::write(&run_dir.join(DISK_IMAGE), &contents()?)?;
    let port = console::free_port()?;
    let me = std::env::current_exe().map_err(|e| Error::Setup(format!("own path: {e}")))?;
    let mut serve = Command::new("/usr/bin/setpriv");
    serve.args(["--pdeathsig", "KILL", "--"]).arg(me).args([
        "gdb-serve",
        "--cpu",
        &cpu,
        "--port",
        &port.to_string(),
    ]);
    serve.process_group(0);
    serve
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot start the gdb server: {e}")))?;
    println!(
        "xtask: booting under Bochs ({cpu}); COM1 is shown here, logs in {}",
        paths::display(&run_dir)
    );
    println!("xtask: gdb connects once the stub waits (~20 s); `continue` starts the guest");
    let err = Command::new("gdb")
        .args(["-q", "-ex", "set remotetimeout 30", "-ex"])
        .arg(format!("file {}", paths::kernel_elf().display()))
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .exec();
    Err(Error::Setup(format!("cannot start gdb: {err}")))
}

/// `xtask gdb-serve --cpu MODEL --port PORT` (started by [`command`]): boots the image in the
/// `gdb` run directory and relays COM2 to PORT.
pub fn serve(args: GdbServeArgs) -> Result<u8> {
    let GdbServeArgs { cpu, port } = args;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| Error::Setup(format!("cannot bind port {port}: {e}")))?;
    let run_dir = paths::run_dir(RUN_NAME);
    let com2 = console::free_port()?;
    let launch = Launch {
        emulator: Emulator::Bochs,
        cpu,
        cpus: 1,
        run_dir: run_dir.clone(),
        timeout: SESSION_LIMIT,
        echo: true,
    };
    std::thread::spawn(move || {
        if let Err(err) = link_when_waiting(com2, &run_dir, listener) {
            eprintln!("xtask: gdb link: {err}");
        }
    });
    let boot = emulator::boot_with_com2(&launch, Input::None, Some(com2))?;
    println!("xtask: guest finished after {:.0} s", boot.seconds);
    Ok(0)
}

/// Connects to COM2, waits for the stub's line on COM1, drains COM2 and relays it to gdb.
fn link_when_waiting(
    com2: u16,
    run_dir: &Path,
    listener: std::net::TcpListener,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Emulator::Bochs.default_timeout();
    let mut stub = link::connect(com2, deadline)?;
    let log = run_dir.join(SERIAL_LOG);
    let waiting = || {
        String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default())
            .contains(test::STUB_WAITING)
    };
    while !waiting() {
        if Instant::now() >= deadline {
            return Err("the stub never waited for a debugger".to_string());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    link::drain(&mut stub);
    link::relay(listener, stub, &run_dir.join("rsp.log")).map(|_| ())
}
