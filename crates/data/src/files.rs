//! Opening the files dae reads: only regular files. A FIFO would block
//! `open` forever and `/dev/zero` (say, through a symlink named x.npy)
//! would be read until memory runs out; `stat` tells them apart first.

use anyhow::{anyhow, bail, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// `path` opened for reading, once known to be a regular file.
pub fn open_regular(path: &Path) -> Result<File> {
    let p = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("{p}: cannot read ({e})"))?;
    if !meta.is_file() {
        bail!("{p}: not a regular file (a directory, device, pipe or socket)");
    }
    File::open(path).map_err(|e| anyhow!("{p}: cannot read ({e})"))
}

/// The whole of the regular file `path`, read through a bound of the size
/// `stat` reported (a file that grows meanwhile is an error, not a bomb).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(64 << 20));
    file.take(len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("{}: cannot read ({e})", path.display()))?;
    if bytes.len() as u64 > len {
        bail!("{}: grew while being read", path.display());
    }
    Ok(bytes)
}

/// `read_regular` as UTF-8 text.
pub fn read_regular_text(path: &Path) -> Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))
}
