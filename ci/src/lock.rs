//! One runner at a time per checkout: every command writes images and run directories under
//! target/rampart, so a second concurrent `cargo xtask` would overwrite the first one's logs
//! mid-run. An advisory lock on target/rampart/xtask.lock makes the second one stop with a
//! clear message instead.

use std::fs::{self, File, TryLockError};

use crate::error::{Context, Error, Result};
use crate::paths;

/// Held for the life of the command; the OS releases it when the process ends.
pub struct RunnerLock(#[allow(dead_code)] File);

/// Takes the lock, or fails at once if another runner holds it.
pub fn acquire() -> Result<RunnerLock> {
    let dir = paths::rampart_dir();
    fs::create_dir_all(&dir).context(|| format!("cannot create {}", paths::display(&dir)))?;
    let path = dir.join("xtask.lock");
    let file = File::create(&path).context(|| format!("cannot open {}", paths::display(&path)))?;
    match file.try_lock() {
        Ok(()) => Ok(RunnerLock(file)),
        Err(TryLockError::WouldBlock) => Err(Error::Setup(format!(
            "another `cargo xtask` is running in this checkout (it holds {}); wait for it to finish",
            paths::display(&path)
        ))),
        Err(TryLockError::Error(source)) => Err(Error::Io {
            what: format!("cannot lock {}", paths::display(&path)),
            source,
        }),
    }
}
