//! The files dae reads and writes. Reads open only regular files: a FIFO
//! would block `open` forever and `/dev/zero` (say, through a symlink named
//! x.npy) would be read until memory runs out; `stat` tells them apart
//! first. Writes go through a temp file and a rename, so readers see the
//! old file or the new one, never a torn one.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// `path` opened for reading, once known to be a regular file.
pub fn open_regular(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot read", e))?;
    if !meta.is_file() {
        return Err(Error::not_data(
            path,
            "not a regular file (a directory, device, pipe or socket)",
        ));
    }
    File::open(path).map_err(|e| Error::io(path, "cannot read", e))
}

/// The whole of the regular file `path`, read through a bound of the size
/// `stat` reported (a file that grows meanwhile is an error, not a bomb).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(64 << 20));
    file.take(len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "cannot read", e))?;
    if bytes.len() as u64 > len {
        return Err(Error::not_data(path, "grew while being read"));
    }
    Ok(bytes)
}

/// `read_regular` as UTF-8 text.
pub fn read_regular_text(path: &Path) -> Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|_| Error::not_data(path, "not UTF-8 text"))
}

/// How dae's temp files start: what a write interrupted by `kill -9` leaves
/// behind, and what the next run into the folder removes.
pub const TEMP_PREFIX: &str = ".dae-tmp-";

/// A temp file in `path`'s directory, to be renamed over `path` once
/// complete. Created with mode 0666 less the umask (what a plain
/// File::create gives), not tempfile's private 0600.
pub fn temp_file_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, "cannot create a file in this directory", e))
}

/// Writes `bytes` to `path` through a temp file in the same directory and a
/// rename, so readers see the old file or the new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_file_beside(path)?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, "write failed", e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(path, "cannot replace", e.error))?;
    Ok(())
}

/// Removes the temp files of writes into `dir` that were interrupted (a
/// `kill -9` mid-write); call with the folder locked, so none is live.
pub fn remove_orphan_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
