//! Booting a disk image under an emulator: choosing one, launching it in a run directory, following the
//! guest's serial log, and stopping the emulator on the result marker, a timeout, or its own exit.

pub mod bochs;
pub mod console;
pub mod qemu;
pub mod stop;
mod supervise;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::image::Mode;
use crate::serial::ResultLine;

/// The guest's COM1 output inside a run directory.
pub const SERIAL_LOG: &str = "serial.log";
/// The disk image copy inside a run directory.
pub const DISK_IMAGE: &str = "disk.img";
/// Debian's 2 MiB OVMF image: the only size Bochs 2.7 can load (PLATFORM.md); QEMU takes it too.
pub const OVMF_PATH: &str = "/usr/share/ovmf/OVMF.fd";
/// The size Bochs 2.7 accepts for a ROM image.
const OVMF_BYTES: u64 = 2 * 1024 * 1024;

/// The emulators the runner can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulator {
    /// Bochs 2.7: emulates VMX with EPT; slow.
    Bochs,
    /// QEMU TCG: fast, but no VMX.
    Qemu,
    /// QEMU with KVM on an Intel host with nested VMX (`-accel kvm -cpu host`).
    Kvm,
}

impl Emulator {
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Bochs => "bochs",
            Emulator::Qemu => "qemu",
            Emulator::Kvm => "kvm",
        }
    }

    /// The emulator's own log in the run directory (shown when a boot goes wrong).
    pub fn log_name(self) -> &'static str {
        match self {
            Emulator::Bochs => "bochs.log",
            Emulator::Qemu | Emulator::Kvm => "qemu.log",
        }
    }

    /// Where the emulator process's stdout and stderr go.
    fn console_name(self) -> &'static str {
        match self {
            Emulator::Bochs => "bochs-console.log",
            Emulator::Qemu | Emulator::Kvm => "qemu.log",
        }
    }

    /// Bochs needs minutes to boot the whole stack; QEMU needs seconds.
    pub fn default_timeout(self) -> Duration {
        match self {
            Emulator::Bochs => Duration::from_secs(600),
            Emulator::Qemu | Emulator::Kvm => Duration::from_secs(120),
        }
    }

    /// The CPU model as shown to the user: Bochs takes `--cpu`, QEMU uses a fixed model.
    pub fn cpu_label(self, bochs_model: &str) -> String {
        match self {
            Emulator::Bochs => bochs_model.to_string(),
            Emulator::Qemu => "max".to_string(),
            Emulator::Kvm => "host".to_string(),
        }
    }
}

/// `--emulator auto|bochs|qemu|kvm`.
pub fn parse_choice(text: &str) -> Option<Option<Emulator>> {
    match text {
        "auto" => Some(None),
        "bochs" => Some(Some(Emulator::Bochs)),
        "qemu" => Some(Some(Emulator::Qemu)),
        "kvm" => Some(Some(Emulator::Kvm)),
        _ => None,
    }
}

/// `auto`: KVM when the host has usable VT-x; otherwise Bochs for the hypervisor and QEMU TCG for native.
pub fn choose(choice: Option<Emulator>, mode: Mode) -> Emulator {
    match (choice, mode) {
        (Some(emulator), _) => emulator,
        (None, _) if kvm_usable() => Emulator::Kvm,
        (None, Mode::Hv) => Emulator::Bochs,
        (None, Mode::Native) => Emulator::Qemu,
    }
}

/// VT-x in /proc/cpuinfo and a /dev/kvm we can open (the machines here have neither).
fn kvm_usable() -> bool {
    let has_vmx = fs::read_to_string("/proc/cpuinfo")
        .map(|info| cpu_flags_have_vmx(&info))
        .unwrap_or(false);
    has_vmx
        && OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// What nested VMX under KVM needs that this host lacks (empty: ready). `cpuinfo` is
/// /proc/cpuinfo, `kvm_opens` whether /dev/kvm opened read-write, `nested` the content of
/// /sys/module/kvm_intel/parameters/nested (`None`: kvm_intel not loaded).
pub fn kvm_missing(cpuinfo: &str, kvm_opens: bool, nested: Option<&str>) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !cpu_flags_have_vmx(cpuinfo) {
        missing.push("the CPU has no `vmx` flag in /proc/cpuinfo (an Intel CPU with VT-x, enabled in the firmware setup)");
    }
    if !kvm_opens {
        missing
            .push("/dev/kvm cannot be opened read-write (load kvm_intel; be in the `kvm` group)");
    }
    match nested.map(str::trim) {
        Some("Y" | "y" | "1") => {}
        Some(_) => missing.push(
            "nested VMX is off (/sys/module/kvm_intel/parameters/nested is N: `modprobe -r kvm_intel && modprobe kvm_intel nested=1`)",
        ),
        None => missing.push("kvm_intel is not loaded (/sys/module/kvm_intel/parameters/nested is missing)"),
    }
    missing
}

/// Checks the host before a KVM boot, naming everything missing (instead of QEMU's own failure,
/// e.g. its MSR assertion on a host whose KVM cannot run VMX guests).
fn check_kvm() -> Result<()> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let kvm_opens = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let nested = fs::read_to_string("/sys/module/kvm_intel/parameters/nested").ok();
    let missing = kvm_missing(&cpuinfo, kvm_opens, nested.as_deref());
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::error::Error::Setup(format!(
        "--emulator kvm needs nested VMX on an Intel host; missing: {}",
        missing.join("; ")
    )))
}

fn cpu_flags_have_vmx(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|line| line.starts_with("flags"))
        .any(|line| line.split_whitespace().any(|flag| flag == "vmx"))
}

/// One boot: which emulator, the CPU model (Bochs), the run directory holding `disk.img`, and limits.
pub struct Launch {
    pub emulator: Emulator,
    pub cpu: String,
    /// Processors of the machine (QEMU `-smp`, Bochs `cpu: count=`).
    pub cpus: u32,
    pub run_dir: PathBuf,
    pub timeout: Duration,
    /// Print each serial line to stdout as it arrives.
    pub echo: bool,
}

/// How a boot ended.
#[derive(Debug)]
pub enum Outcome {
    /// The guest printed its result line.
    Verdict(ResultLine),
    /// The user quit or a signal arrived: the runner stopped the emulator.
    Stopped(stop::Stop),
    /// No result line within the time limit.
    Timeout,
    /// The emulator exited without a result line (with its exit status).
    Exited(String),
}

/// A finished boot: how it ended, every serial line, and timings.
pub struct Boot {
    pub outcome: Outcome,
    pub lines: Vec<String>,
    pub seconds: f64,
    /// Seconds until the first `[fw]` line (OVMF's time to start BOOTX64.EFI).
    pub firmware_seconds: Option<f64>,
}

/// Fails clearly unless the 2 MiB OVMF image is present.
pub fn check_ovmf() -> Result<()> {
    match fs::metadata(OVMF_PATH) {
        Ok(meta) if meta.len() == OVMF_BYTES => Ok(()),
        Ok(meta) => Err(Error::Setup(format!(
            "{OVMF_PATH} is {} bytes; Bochs 2.7 needs the 2 MiB image (Debian bookworm's `ovmf` package)",
            meta.len()
        ))),
        Err(_) => Err(Error::Setup(format!(
            "{OVMF_PATH} is missing: install Debian's `ovmf` package (apt-get install ovmf)"
        ))),
    }
}

/// Empties (or creates) `target/rampart/runs/<name>/`.
pub fn fresh_run_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))
}

/// Who types into the guest console (COM1).
pub enum Input {
    /// Nobody: the console is only logged.
    None,
    /// The user, stdin not a terminal: stdin lines are forwarded, and the guest's output is shown
    /// raw on stdout.
    Lines,
    /// The user at a terminal in raw mode: keys are forwarded as typed through the escape keys
    /// (`crate::terminal`), which, like signals, stop the boot through this request.
    Keys(stop::StopRequest),
    /// A scripted session, run on its own thread while the boot is supervised. It gets the
    /// console and a flag to raise when it failed, which stops the emulator at once.
    Script(Script),
}

/// A scripted session: given the console and the flag that stops the boot when raised.
pub type Script = Box<dyn FnOnce(&console::Console, &AtomicBool) + Send>;

/// Boots `run_dir/disk.img` with nobody typing, and follows the serial log until an outcome.
pub fn boot(launch: &Launch) -> Result<Boot> {
    boot_with(launch, Input::None)
}

/// Boots `run_dir/disk.img` with COM1 on a TCP socket the runner connects to (logged to
/// `serial.log`), `input` typing into it, and follows the log until an outcome.
pub fn boot_with(launch: &Launch, input: Input) -> Result<Boot> {
    boot_with_com2(launch, input, None)
}

/// Like [`boot_with`], with COM2 (the hypervisor's GDB stub) as a TCP server on `com2` (Bochs
/// only; the emulator waits for a client there too, see `crate::gdb`).
pub fn boot_with_com2(launch: &Launch, input: Input, com2: Option<u16>) -> Result<Boot> {
    check_ovmf()?;
    if launch.emulator == Emulator::Kvm {
        check_kvm()?;
    }
    let port = console::free_port()?;
    let command = match launch.emulator {
        Emulator::Bochs => bochs::command(&launch.run_dir, &launch.cpu, launch.cpus, port, com2)?,
        Emulator::Qemu => qemu::command(false, launch.cpus, port),
        Emulator::Kvm => qemu::command(true, launch.cpus, port),
    };
    let mut child = spawn(command, launch)?;
    let deadline = Instant::now() + launch.timeout;
    let echo_raw = matches!(input, Input::Lines | Input::Keys(_));
    let log = launch.run_dir.join(SERIAL_LOG);
    let alive = || matches!(child.try_wait(), Ok(None));
    let console = match console::Console::connect(port, &log, echo_raw, deadline, alive) {
        Ok(console) => console,
        Err(err) => {
            supervise::Supervisor::new(launch, child).stop_now();
            return Err(err);
        }
    };
    let abort = Arc::new(AtomicBool::new(false));
    let boot = std::thread::scope(|scope| {
        let mut stop = None;
        match input {
            Input::None => {}
            Input::Lines => forward_stdin(&console)?,
            Input::Keys(request) => {
                crate::terminal::keys::forward(console.writer()?, request.clone());
                stop = Some(request);
            }
            Input::Script(script) => {
                let (console, abort) = (&console, Arc::clone(&abort));
                scope.spawn(move || script(console, &abort));
            }
        }
        let boot = supervise::Supervisor::new(launch, child)
            .abort_on(Arc::clone(&abort))
            .stop_on(stop)
            .run();
        // Ends a script still waiting on the console (its waits fail at once).
        console.shutdown();
        boot
    });
    console.close();
    boot
}

/// Forwards stdin lines to the guest from a detached thread (it ends with the runner).
fn forward_stdin(console: &console::Console) -> Result<()> {
    let writer = console.writer()?;
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if writer.send_line(&line).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Starts the emulator in its own process group, output to its console log, and (via `setpriv`) with a
/// parent-death signal so an interrupted runner leaves no emulator behind.
fn spawn(command: Command, launch: &Launch) -> Result<Child> {
    let console_path = launch.run_dir.join(launch.emulator.console_name());
    let console = File::create(&console_path)
        .context(|| format!("cannot create {}", console_path.display()))?;
    let mut wrapped = with_parent_death_signal(command);
    wrapped
        .current_dir(&launch.run_dir)
        .stdin(Stdio::null())
        .stdout(
            console
                .try_clone()
                .context(|| "cannot dup log".to_string())?,
        )
        .stderr(console);
    std::os::unix::process::CommandExt::process_group(&mut wrapped, 0);
    let program = wrapped.get_program().to_string_lossy().into_owned();
    wrapped
        .spawn()
        .map_err(|err| Error::Setup(format!("cannot start {program}: {err}")))
}

fn with_parent_death_signal(command: Command) -> Command {
    if !Path::new("/usr/bin/setpriv").exists() {
        return command;
    }
    let mut wrapped = Command::new("/usr/bin/setpriv");
    wrapped.args(["--pdeathsig", "KILL", "--"]);
    wrapped.arg(command.get_program()).args(command.get_args());
    wrapped
}

/// The last `count` lines of a text file (empty if it is missing).
pub fn file_tail(path: &Path, count: usize) -> Vec<String> {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(count);
    lines[skip..].iter().map(|line| line.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_emulator_choice() {
        assert_eq!(parse_choice("auto"), Some(None));
        assert_eq!(parse_choice("bochs"), Some(Some(Emulator::Bochs)));
        assert_eq!(parse_choice("kvm"), Some(Some(Emulator::Kvm)));
    }

    #[test]
    fn kvm_readiness_names_what_is_missing() {
        let intel = "flags\t\t: fpu vme vmx ept\n";
        assert!(kvm_missing(intel, true, Some("Y\n")).is_empty());
        let amd = kvm_missing("flags\t\t: fpu svm\n", false, None);
        assert_eq!(amd.len(), 3, "{amd:?}");
        let off = kvm_missing(intel, true, Some("N\n"));
        assert_eq!(off.len(), 1);
        assert!(off[0].contains("nested=1"));
        assert_eq!(parse_choice("vbox"), None);
    }

    #[test]
    fn explicit_choice_wins() {
        assert_eq!(choose(Some(Emulator::Qemu), Mode::Hv), Emulator::Qemu);
    }

    #[test]
    fn finds_vmx_flag() {
        assert!(cpu_flags_have_vmx(
            "processor : 0\nflags\t\t: fpu vme vmx sse\n"
        ));
        assert!(!cpu_flags_have_vmx("flags\t\t: fpu svm vmxx\n"));
    }
}
