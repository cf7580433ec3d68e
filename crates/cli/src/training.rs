//! Training one model into a run directory: the part `train`, `compare` and
//! `cv` share. Checks the memory plan, builds the device's backend, runs the
//! epoch loop and checkpoints after every epoch.

use crate::args::DeviceChoice;
use crate::device::create_backend;
use crate::progress::{thousands, Progress};
use crate::run_dir::RunDir;
use anyhow::{bail, Result};
use dae_data::Dataset;
use dae_model::memory::human_bytes;
use dae_model::{
    fit, Architecture, Backend, Checkpoint, EpochStats, FitObserver, History, MemoryPlan,
    StepObserver, TrainConfig, TrainState,
};

pub struct Session<'a> {
    pub run: &'a RunDir,
    pub arch: &'a Architecture,
    pub config: &'a TrainConfig,
    /// Where the data came from, for the checkpoint.
    pub data: &'a str,
    pub device: DeviceChoice,
    pub quiet: bool,
    /// Put before each epoch line, e.g. "[fold 2/5] ".
    pub label: String,
}

pub struct Trained {
    pub backend: Box<dyn Backend>,
    pub history: History,
    /// Time spent in training steps (validation and checkpoints excluded).
    pub train_seconds: f64,
}

/// Reports progress and checkpoints after every epoch.
struct Observer<'a> {
    session: &'a Session<'a>,
    progress: Progress,
    train_seconds: f64,
}

impl StepObserver for Observer<'_> {
    fn on_step(&mut self, step: usize, samples_done: usize, loss: Option<f64>) {
        self.progress.step(step, samples_done, loss);
    }
}

impl FitObserver for Observer<'_> {
    fn on_epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.progress.epoch_start(epoch, epochs, steps);
    }

    fn on_epoch_end(
        &mut self,
        s: &EpochStats,
        history: &History,
        backend: &mut dyn Backend,
    ) -> Result<()> {
        self.train_seconds += s.train_seconds;
        let ck = Checkpoint {
            arch: self.session.arch.clone(),
            config: self.session.config.clone(),
            state: backend.state()?,
            history: history.clone(),
            data: self.session.data.to_string(),
        };
        ck.save(&self.session.run.checkpoint())?;
        self.session.run.save_history(history)?;
        self.progress.epoch_end(&format!(
            "{}Epoch {}/{} - {} steps - {:.2}s - {} samples/s - loss: {:.4} - val_loss: {:.4}",
            self.session.label,
            s.epoch,
            s.epochs,
            s.steps,
            s.train_seconds,
            thousands(s.samples_per_second),
            s.loss,
            s.val_loss
        ));
        Ok(())
    }
}

/// Trains from `state`/`history` to `config.epochs` on `train`, validating
/// on `validation`.
pub fn train(
    session: &Session,
    state: TrainState,
    mut history: History,
    train: &Dataset,
    validation: &Dataset,
) -> Result<Trained> {
    let (arch, config) = (session.arch, session.config);
    let mut backend = create_backend(session.device, arch, config, state, session.quiet)?;
    let rows = config.batch.min(train.rows.max(validation.rows));
    let plan = MemoryPlan::new(arch, rows, train.bytes() + validation.bytes());
    if !session.quiet {
        println!(
            "{}{} on {}",
            session.label,
            plan.describe(),
            backend.device()
        );
    }
    if let Some(free) = backend.available_memory() {
        if plan.total() > free {
            bail!(
                "this run needs {} on {} but only {} is available; use a smaller --batch, \
                 narrower --layers or less data",
                human_bytes(plan.total()),
                backend.device(),
                human_bytes(free)
            );
        }
    }
    if !session.quiet {
        println!(
            "{}training {} on {}: epochs {}..{}, batch {}, {} steps/epoch, seed {}, {}",
            session.label,
            arch.describe(),
            backend.device(),
            history.epochs_done() + 1,
            config.epochs,
            config.batch,
            config.steps_per_epoch(train.rows),
            config.seed,
            config.precision
        );
    }
    let mut observer = Observer {
        session,
        progress: Progress::new(session.quiet),
        train_seconds: 0.0,
    };
    fit(
        backend.as_mut(),
        train,
        validation,
        config,
        &mut history,
        &mut observer,
    )?;
    let train_seconds = observer.train_seconds;
    Ok(Trained {
        backend,
        history,
        train_seconds,
    })
}
