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
