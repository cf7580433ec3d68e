//! An advisory lock on a file in a run folder while a process trains into
//! it, so a second trainer fails with the first one's pid instead of mixing
//! files with it. The lock (flock, through fs4) goes with the process: a
//! crash or `kill -9` never leaves a folder locked.

use anyhow::{anyhow, bail, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file in a run folder; it holds the pid of the last holder.
pub const LOCK_FILE: &str = ".dae-lock";

/// Held while training; the lock is released when this is dropped.
pub struct RunLock {
    _file: File,
}

/// Locks `dir` (which must exist) for this process, or fails naming the
/// process that holds it.
pub fn lock(dir: &Path) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow!("{}: cannot open the run's lock file ({e})", path.display()))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "{}: another dae process{} is training into this folder; wait for it to \
                 finish or pass another --out",
                dir.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                }
            );
        }
        Err(fs4::TryLockError::Error(e)) => {
            bail!("{}: cannot lock the run folder ({e})", path.display())
        }
    }
    // Ours now: record who holds it, for the error above.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(RunLock { _file: file })
}
