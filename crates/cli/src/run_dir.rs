//! A training run's directory: checkpoint, history, figure, run summary.
//! Every file is written to a temp file and renamed into place. A folder
//! becomes a run folder only through `claim`, which marks it; dae replaces
//! files only in folders it marked, and only its own.

use crate::run_lock::LOCK_FILE;
use anyhow::{bail, Context, Result};
use dae_data::write_atomically;
use dae_model::{Checkpoint, History};
use std::path::{Path, PathBuf};

/// Written by dae into every folder it takes for its output: a folder
/// without it (and without a dae checkpoint) holds someone else's files.
pub const MARKER: &str = ".dae-run";

/// The files `dae train` writes into a run folder.
pub const RUN_FILES: &[&str] = &[
    "checkpoint.safetensors",
    "encoder.safetensors",
    "history.json",
    "history.csv",
    "history.png",
    "figure.png",
    "run.json",
];

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: &Path) -> Self {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.path.join("checkpoint.safetensors")
    }

    pub fn figure(&self) -> PathBuf {
        self.path.join("figure.png")
    }

    pub fn load_checkpoint(&self) -> Result<Checkpoint> {
        let path = self.checkpoint();
        if !path.exists() {
            anyhow::bail!(
                "{}: no checkpoint here (is {} a run directory written by `dae train`?)",
                path.display(),
                self.path.display()
            );
        }
        Ok(Checkpoint::load(&path)?)
    }

    pub fn save_history(&self, history: &History) -> Result<()> {
        let json = serde_json::to_string_pretty(history)?;
        write_atomically(&self.path.join("history.json"), json.as_bytes())?;
        write_atomically(&self.path.join("history.csv"), history.to_csv().as_bytes())?;
        let name = self.path.file_name().unwrap_or(self.path.as_os_str());
        let title = format!("training history, {}", name.to_string_lossy());
        // Histories from before the rate was recorded have no lr panel.
        let lr = (!history.lr.is_empty()).then_some(history.lr.as_slice());
        crate::chart::history_chart(&title, &history.loss, &history.val_loss, lr)?
            .render_png(&self.path.join("history.png"))
            .context("writing history.png")
    }

    pub fn save_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        write_atomically(&self.path.join(name), text.as_bytes())
            .with_context(|| format!("writing {name}"))
    }
}

/// Whether `dir` holds a dae checkpoint (one written before run markers
/// existed): its safetensors header names dae's format.
fn holds_dae_checkpoint(dir: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(dir.join("checkpoint.safetensors")) else {
        return false;
    };
    let mut len = [0u8; 8];
    if f.read_exact(&mut len).is_err() {
        return false;
    }
    let n = u64::from_le_bytes(len);
    // A header is JSON of a few KB; never read more than 1 MiB of it.
    let mut header = Vec::new();
    if n > 1 << 20 || f.take(n).read_to_end(&mut header).is_err() {
        return false;
    }
    String::from_utf8_lossy(&header).contains("\"format\":\"dae-checkpoint-")
}

/// Whether dae may write its output into `dir`: it is new, empty, marked
/// by dae, or holds a dae checkpoint. A foreign non-empty folder is refused
/// without `force`; with it, dae writes there only if none of `own` (the
/// files it would write) is already present. `/` is always refused.
pub fn check_out_dir(flag: &str, dir: &Path, force: bool, own: &[&str]) -> Result<()> {
    let d = dir.display();
    let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if resolved.parent().is_none() {
        bail!("{flag} {d}: refusing to write a run into the filesystem root");
    }
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!("{flag} {d}: exists and is not a directory");
    }
    let ours = dir.join(MARKER).exists() || holds_dae_checkpoint(dir);
    let empty = std::fs::read_dir(dir)
        .with_context(|| format!("{flag} {d}: cannot list"))?
        .next()
        .is_none();
    if ours || empty {
        return Ok(());
    }
    if !force {
        bail!(
            "{flag} {d}: exists, is not empty and is not a dae run folder (no {MARKER} marker); \
             pass another {flag}, or --force to add dae's files beside the ones there"
        );
    }
    if let Some(f) = own.iter().find(|f| dir.join(f).exists()) {
        bail!(
            "{flag} {d}: {f} there was not written by dae (the folder has no {MARKER} marker); \
             refusing to replace it even with --force"
        );
    }
    Ok(())
}

/// Checks `dir` as `check_out_dir` does, creates it when missing and marks
/// it as dae's. Returns whether it was created (so a run that fails before
/// saving anything can remove it again with `unclaim`).
pub fn claim(flag: &str, dir: &Path, force: bool, own: &[&str]) -> Result<bool> {
    check_out_dir(flag, dir, force, own)?;
    let created = !dir.exists();
    crate::args::ensure_writable_dir(dir)?;
    let marker = dir.join(MARKER);
    if !marker.exists() {
        std::fs::write(
            &marker,
            "This folder holds output of dae; dae replaces only its own files here.\n",
        )
        .with_context(|| format!("{}: cannot write", marker.display()))?;
    }
    Ok(created)
}

/// Removes a folder `claim` created, when nothing but dae's marker and lock
/// are in it: never anything already saved.
pub fn unclaim(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let only_ours = entries
        .flatten()
        .all(|e| [MARKER, LOCK_FILE].contains(&e.file_name().to_string_lossy().as_ref()));
    if only_ours {
        for f in [MARKER, LOCK_FILE] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let _ = std::fs::remove_dir(dir);
    }
}

/// The current UTC time as 2026-11-27T10:41:52Z (no time-zone crate needed
/// for UTC: days from the epoch to a civil date, Howard Hinnant's method).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
