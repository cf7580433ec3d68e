//! An output path must never name one of the command's inputs (the data,
//! the checkpoint, the run's own files): writing it would replace the very
//! file being read.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// `p` with symlinks and `..` resolved; for a path that does not exist yet,
/// its resolved parent joined with its name. None when even the parent
/// cannot be resolved (then no existing input can be named by it).
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(r) = std::fs::canonicalize(p) {
        return Some(r);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
}

/// Whether two existing paths are one file (hard links included).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Refuses `out` (given by `flag`) when it is one of `inputs` ((what, path)
/// pairs) or lies inside an input that is a directory.
pub fn refuse_input_as_output(flag: &str, out: &Path, inputs: &[(&str, PathBuf)]) -> Result<()> {
    let Some(o) = resolved(out) else {
        return Ok(());
    };
    for (what, input) in inputs {
        let Some(i) = resolved(input) else { continue };
        let clash = if i.is_dir() {
            o.starts_with(&i)
        } else {
            o == i || same_file(out, input)
        };
        if clash {
            bail!(
                "{flag} {}: is {what} ({}); refusing to overwrite an input",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}
