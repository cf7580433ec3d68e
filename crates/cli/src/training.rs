//! Training one model into a run directory: the part `train`, `compare` and
//! `cv` share. Checks the memory plan, builds the device's backend, runs the
//! epoch loop and checkpoints after every epoch.

use crate::args::DeviceChoice;
use crate::device::{build_backend, resolve, Device};
use crate::progress::{thousands, Progress};
use crate::run_dir::RunDir;
use anyhow::{bail, Result};
use dae_data::Dataset;
use dae_model::memory::human_bytes;
use dae_model::{
    fit, Architecture, Backend, Checkpoint, EpochStats, FitObserver, History, MemoryPlan,
    StepObserver, TargetReached, TrainConfig, TrainState,
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
    /// Where `config.target_val_loss` was met (training stopped there).
    pub reached: Option<TargetReached>,
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

    fn stop_requested(&self) -> bool {
        crate::signals::stop_requested()
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
    ) -> dae_model::Result<()> {
        self.saved(s, history, backend)
            .map_err(|e| dae_model::Error::Caller(e.into()))
    }
}

impl Observer<'_> {
    /// Checkpoints the epoch and reports it.
    fn saved(
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

/// Where a run starts: fresh weights (Glorot, from the seed) or a checkpoint.
pub enum Start {
    Fresh,
    Resume(TrainState, History),
}

/// Prints the memory plan and refuses a run that does not fit the device,
/// before anything large is allocated.
fn preflight(
    session: &Session,
    device: &Device,
    train: &Dataset,
    validation: &Dataset,
) -> Result<()> {
    let (arch, config) = (session.arch, session.config);
    // What each backend allocates: the CPU's activation rows, or every
    // buffer of the device backend for this GPU's SM count.
    let data = train.bytes() + validation.bytes();
    let plan = match device {
        Device::Cpu => MemoryPlan::cpu(arch, config.optimizer, config.batch, train.rows, data)?,
        Device::Cuda(gpu) => {
            let sms = gpu.sm_count as usize;
            let optimizer = config.optimizer;
            MemoryPlan::device(arch, optimizer, config.batch, sms, train.rows, data)?
        }
    }
    .accumulating(arch, config.accumulate);
    let name = match device {
        Device::Cpu => "the CPU",
        Device::Cuda(_) => "the GPU",
    };
    if !session.quiet {
        say!("{}{} on {name}", session.label, plan.describe());
    }
    if let Some((free, what)) = device.available_memory() {
        if plan.total() > free {
            bail!(
                "this run needs {} on {name} but only {} is available ({what}); use a smaller \
                 --batch, narrower --layers or less data",
                human_bytes(plan.total()),
                human_bytes(free)
            );
        }
    }
    Ok(())
}

/// Trains from `start` to `config.epochs` on `train`, validating on
/// `validation`.
pub fn train(
    session: &Session,
    start: Start,
    train: &Dataset,
    validation: &Dataset,
) -> Result<Trained> {
    let (arch, config) = (session.arch, session.config);
    let device = resolve(session.device, config.precision, session.quiet)?;
    preflight(session, &device, train, validation)?;
    let (state, mut history) = match start {
        Start::Fresh => (
            TrainState::initialize(arch, config.seed),
            History::default(),
        ),
        Start::Resume(state, history) => (state, history),
    };
    let mut backend = build_backend(&device, arch, config, state)?;
    crate::signals::install();
    if !session.quiet {
        say!(
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
    let outcome = fit(
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
        reached: outcome.reached,
    })
}
