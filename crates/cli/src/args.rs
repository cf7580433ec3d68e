//! Flags shared by several subcommands, and resolving them.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use dae_data::DataSplits;
use std::path::{Path, PathBuf};

pub use crate::device::DeviceChoice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Split {
    Train,
    Test,
}

/// Datasets known by name, found under `data/NAME` (beside the working
/// directory or above the binary) or `$DAE_DATA_HOME/NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KnownData {
    /// Fashion-MNIST, shipped in data/fashion-mnist
    FashionMnist,
    /// MNIST digits, as `dae data fetch mnist` writes them to data/mnist
    Mnist,
}

impl KnownData {
    pub fn dir_name(self) -> &'static str {
        match self {
            KnownData::FashionMnist => "fashion-mnist",
            KnownData::Mnist => "mnist",
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Dataset: a directory of IDX files (gzip'd or raw), an .npz with
    /// x_train/x_test[/y_train/y_test], or an .npy of training samples
    /// [default: the shipped data/fashion-mnist]
    #[arg(long, value_name = "PATH", conflicts_with = "dataset")]
    pub data: Option<PathBuf>,
    /// A known dataset by name, from its usual place
    #[arg(long, value_enum)]
    pub dataset: Option<KnownData>,
    /// Validation samples (.npy) for an .npy --data; without it the last 10% are held out
    #[arg(long, value_name = "FILE")]
    pub val_data: Option<PathBuf>,
}

/// The places a known dataset is looked for, in order: `$DAE_DATA` (for
/// the default set only), `$DAE_DATA_HOME/NAME`, `data/NAME` in the working
/// directory, then `data/NAME` above the binary (target/release/dae → the
/// repository).
fn known_data_candidates(which: KnownData) -> Vec<PathBuf> {
    let name = which.dir_name();
    let mut candidates = Vec::new();
    if which == KnownData::FashionMnist {
        if let Ok(env) = std::env::var("DAE_DATA") {
            candidates.push(PathBuf::from(env));
        }
    }
    if let Ok(home) = std::env::var("DAE_DATA_HOME") {
        candidates.push(PathBuf::from(home).join(name));
    }
    candidates.push(PathBuf::from("data").join(name));
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            candidates.push(dir.join("data").join(name));
        }
    }
    candidates
}

/// Where a known dataset lives, or an error saying where it was looked for
/// and how to get it.
pub fn known_data_dir(which: KnownData) -> Result<PathBuf> {
    let candidates = known_data_candidates(which);
    if let Some(found) = candidates.iter().find(|c| c.is_dir()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    let how = match which {
        KnownData::FashionMnist => "pass --data DIR or set DAE_DATA",
        KnownData::Mnist => {
            "run `dae data fetch mnist` (it writes data/mnist; needs a network) or pass --data DIR"
        }
    };
    bail!(
        "{} was not found (looked in {}); {how}",
        which.dir_name(),
        tried.join(", ")
    )
}

impl DataArgs {
    pub fn path(&self) -> Result<PathBuf> {
        match (&self.data, self.dataset) {
            (Some(p), _) => Ok(p.clone()),
            (None, which) => known_data_dir(which.unwrap_or(KnownData::FashionMnist)),
        }
    }

    pub fn load(&self) -> Result<DataSplits> {
        let path = self.path()?;
        Ok(dae_data::load(&path, self.val_data.as_deref())?)
    }
}

/// Encoder widths as given by `--layers 128,64,32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

/// `--layers` as a clap value parser.
pub fn parse_layers(s: &str) -> Result<Widths, String> {
    dae_model::Architecture::parse_layers(s)
        .map(Widths)
        .map_err(|e| format!("{e}").trim_start_matches("--layers: ").to_string())
}

pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("'{s}' is not a positive integer")),
    }
}

/// The most CPU threads `--threads` may ask for: each is an OS thread with
/// an 8 MiB stack, so a mistyped count must not try to start a million.
pub const MAX_THREADS: usize = 1024;

/// `--threads` as a clap value parser: 1 to `MAX_THREADS`.
pub fn thread_count(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n > MAX_THREADS => Err(format!(
            "{n} is more than the {MAX_THREADS} threads allowed"
        )),
        n => Ok(n),
    }
}

/// An Adam moment's decay (`--beta1`, `--beta2`): in [0, 1).
pub fn check_moment_decay(flag: &str, b: f64) -> Result<()> {
    if !(0.0..1.0).contains(&b) {
        bail!("{flag} {b}: a moment's decay must be in [0, 1)");
    }
    Ok(())
}

/// Fails early, with the directory named, when `dir` cannot be written.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("--out {}: cannot create directory ({e})", dir.display()))?;
    tempfile::Builder::new()
        .prefix(dae_data::TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| anyhow::anyhow!("--out {}: directory is not writable ({e})", dir.display()))?;
    Ok(())
}

/// Settings of commands that train several models alike (compare, cv).
#[derive(Args, Clone, Debug)]
pub struct ScheduleArgs {
    #[arg(long, default_value_t = 256, value_parser = positive)]
    pub batch: usize,
    /// Seed of the weight init and the shuffles (and the folds or figure samples)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Replace runs already in --out
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub quiet: bool,
}

impl ScheduleArgs {
    /// The lab's settings with these flags and `epochs`.
    pub fn config(&self, epochs: usize) -> Result<dae_model::TrainConfig> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        Ok(dae_model::TrainConfig {
            epochs,
            batch: self.batch,
            seed: self.seed,
            lr: self.lr,
            ..dae_model::TrainConfig::lab()
        })
    }
}

/// A trained run and the data to apply it to (encode, eval, figure).
#[derive(Args, Debug)]
pub struct TrainedRunArgs {
    /// Run directory written by `dae train`
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// A trained run opened on its device, with the data it applies to.
pub struct OpenRun {
    pub run: crate::run_dir::RunDir,
    pub ck: dae_model::Checkpoint,
    pub splits: DataSplits,
    pub backend: Box<dyn dae_model::Backend>,
}

impl Split {
    pub fn of(self, splits: &DataSplits) -> &dae_data::Dataset {
        match self {
            Split::Train => &splits.train,
            Split::Test => &splits.test,
        }
    }
}

impl TrainedRunArgs {
    /// What an output of encode, eval or figure must not overwrite: the
    /// data and the run's own files, but `allowed` (figure's figure.png).
    pub fn inputs(&self, allowed: &str) -> Vec<(&'static str, PathBuf)> {
        let mut inputs = Vec::new();
        if let Ok(p) = self.data.path() {
            inputs.push(("the data", p));
        }
        if let Some(p) = &self.data.val_data {
            inputs.push(("the validation data", p.clone()));
        }
        let own = crate::run_dir::RUN_FILES
            .iter()
            .chain(&[crate::run_dir::MARKER, crate::run_lock::LOCK_FILE]);
        for f in own.filter(|f| **f != allowed) {
            inputs.push(("one of the run's own files", self.run.join(f)));
        }
        inputs
    }

    /// The run's checkpoint, the data (checked to fit it) and its backend.
    pub fn open(&self) -> Result<OpenRun> {
        let (run, ck, splits) = self.load()?;
        let device = crate::device::resolve(self.device, ck.config.precision, true)?;
        let backend =
            crate::device::build_backend(&device, &ck.arch, &ck.config, ck.state.clone())?;
        Ok(OpenRun {
            run,
            ck,
            splits,
            backend,
        })
    }

    /// The run's checkpoint and the data, checked to fit each other.
    fn load(&self) -> Result<(crate::run_dir::RunDir, dae_model::Checkpoint, DataSplits)> {
        let run = crate::run_dir::RunDir::new(&self.run);
        let ck = run.load_checkpoint()?;
        let splits = self.data.load()?;
        if ck.arch.input_dim != splits.train.dim {
            bail!(
                "{}: checkpoint architecture {} takes {} values per sample, but the data has {}",
                run.checkpoint().display(),
                ck.arch.describe(),
                ck.arch.input_dim,
                splits.train.dim
            );
        }
        Ok((run, ck, splits))
    }
}
