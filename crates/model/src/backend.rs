//! What a device must do to train and use the model.

use crate::Result;
use crate::TrainState;
use dae_core::schedule::LrSchedule;
use dae_data::Dataset;

/// Training met a non-finite loss at this 1-based step of the epoch (None
/// when the device only sees the epoch's sum).
#[derive(Debug)]
pub struct NonFiniteLoss {
    pub step: Option<usize>,
}

impl std::fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            Some(step) => write!(f, "non-finite loss at step {step}"),
            None => write!(f, "non-finite loss"),
        }
    }
}

impl std::error::Error for NonFiniteLoss {}

/// Training was asked to stop (a signal) and did, after this 1-based step of
/// the epoch; that epoch's work is not saved.
#[derive(Debug)]
pub struct Interrupted {
    pub step: usize,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by a signal after step {}", self.step)
    }
}

impl std::error::Error for Interrupted {}

/// Told after each step; `loss` is the running mean when the device knows it
/// without a synchronisation (the GPU reads its loss back once per epoch).
pub trait StepObserver {
    fn on_step(&mut self, step: usize, samples_done: usize, loss: Option<f64>);
    /// Asked after each step: true ends the epoch there with [`Interrupted`].
    fn stop_requested(&self) -> bool {
        false
    }
}

/// An observer that ignores every step (checks, benchmarks, tests).
pub struct Silent;

impl StepObserver for Silent {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
}

/// Appends the mean binary cross-entropy of each row of `logits` against
/// `input` ([rows, dim] both) to `out`: the per-row losses of an evaluation,
/// computed on the host by every backend with the CPU's loss op.
pub(crate) fn push_row_losses(logits: &[f32], input: &[f32], dim: usize, out: &mut Vec<f64>) {
    let mut scratch = vec![0.0f32; dim];
    for (z, t) in logits.chunks_exact(dim).zip(input.chunks_exact(dim)) {
        out.push(dae_core::cpu::bce_logits(z, t, &mut scratch, 1.0) / dim as f64);
    }
}

/// Reconstruction loss on a split.
pub struct Evaluation {
    /// Mean binary cross-entropy over all elements.
    pub loss: f64,
    /// Mean binary cross-entropy of each row (when asked for).
    pub row_loss: Vec<f64>,
}

pub trait Backend {
    /// Human-readable device name, e.g. "cpu (2 threads)".
    fn device(&self) -> String;
    fn load_state(&mut self, state: &TrainState) -> Result<()>;
    fn state(&mut self) -> Result<TrainState>;
    /// The learning rate of every step from now on, by the 1-based step
    /// counter the state carries (`fit` sets the run's before training).
    fn set_schedule(&mut self, schedule: LrSchedule) -> Result<()>;
    /// One epoch of mini-batch steps over `data` in the order `perm`, the
    /// last batch partial; returns the sample-weighted mean of the batch
    /// losses (what Keras reports as the epoch's `loss`).
    fn train_epoch(
        &mut self,
        data: &Dataset,
        perm: &[u32],
        batch: usize,
        observer: &mut dyn StepObserver,
    ) -> Result<f64>;
    /// Reconstruction loss on `data`; with `per_row`, each row's too.
    fn evaluate(&mut self, data: &Dataset, per_row: bool) -> Result<Evaluation>;
    /// Device-timed milliseconds of the last `train_epoch`, where the device
    /// has its own clock (CUDA events); None on the CPU.
    fn last_epoch_device_ms(&self) -> Option<f64> {
        None
    }
    /// Codes [rows.len(), code_dim] of the given rows.
    fn encode(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>>;
    /// Reconstructions (sigmoid outputs) [rows.len(), input_dim].
    fn reconstruct(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>>;
    /// The mean loss on `rows` and its gradient for every parameter, with
    /// nothing updated (for checks).
    fn loss_and_gradients(&mut self, data: &Dataset, rows: &[u32]) -> Result<(f64, Vec<f32>)>;
}
