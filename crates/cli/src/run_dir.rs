//! A training run's directory: checkpoint, history, figure, run summary.
//! Every file is written to a temp file and renamed into place.

use anyhow::{Context, Result};
use dae_model::checkpoint::write_atomically;
use dae_model::{Checkpoint, History};
use std::path::{Path, PathBuf};

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
        Checkpoint::load(&path)
    }

    pub fn save_history(&self, history: &History) -> Result<()> {
        let json = serde_json::to_string_pretty(history)?;
        write_atomically(&self.path.join("history.json"), json.as_bytes())?;
        write_atomically(&self.path.join("history.csv"), history.to_csv().as_bytes())
    }

    pub fn save_json(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        write_atomically(&self.path.join(name), text.as_bytes())
            .with_context(|| format!("writing {name}"))
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
