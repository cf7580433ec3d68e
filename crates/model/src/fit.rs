//! The epoch loop shared by every device.

use crate::error::{err, fail};
use crate::Result;
use crate::{Backend, Error, Optimizer, StepObserver};
use dae_core::rng::epoch_permutation;
use dae_core::schedule::{scaled_peak, BatchScaling, LrSchedule, ScheduleKind, Warmup};
use dae_core::{AdamConfig, Precision};
use dae_data::Dataset;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The training settings recorded in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    // Kept as f64 so settings read back as written (0.9, not 0.8999999761…);
    // the optimizer runs on their f32 roundings.
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Stored by name ("fp32"), as it always was.
    pub precision: Precision,
    // The learning-rate schedule (issue 12). Each defaults to the lab's
    // behaviour, so checkpoints written before these fields load as before.
    /// The shape after warmup.
    #[serde(default)]
    pub schedule: ScheduleKind,
    #[serde(default)]
    pub warmup: Warmup,
    /// The last step's learning rate as a fraction of the peak.
    #[serde(default)]
    pub final_lr: f64,
    /// How the peak follows `batch` relative to `reference_batch`.
    #[serde(default)]
    pub lr_scaling: BatchScaling,
    #[serde(default = "default_reference_batch")]
    pub reference_batch: usize,
    /// Stop after the first epoch whose validation loss is at most this.
    #[serde(default)]
    pub target_val_loss: Option<f64>,
    /// Stored by name ("adam", "adamw", "lamb"); runs saved before it
    /// existed trained with Adam.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// AdamW's and LAMB's weight decay (0: none; Adam has none).
    #[serde(default)]
    pub weight_decay: f64,
    /// Micro-batches of `batch` rows per optimizer step (`--accumulate`);
    /// checkpoints from before it train one per step.
    #[serde(default = "one")]
    pub accumulate: usize,
}

fn default_reference_batch() -> usize {
    256
}

fn one() -> usize {
    1
}

impl TrainConfig {
    /// The lab's settings: 20 epochs, batch 256, Keras' Adam.
    pub fn lab() -> Self {
        TrainConfig {
            epochs: 20,
            batch: 256,
            seed: 42,
            // Keras' Adam defaults (AdamConfig::default holds their f32s).
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            precision: Precision::Fp32,
            schedule: ScheduleKind::Constant,
            warmup: Warmup::default(),
            final_lr: 0.0,
            lr_scaling: BatchScaling::None,
            reference_batch: default_reference_batch(),
            target_val_loss: None,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            accumulate: 1,
        }
    }

    /// The optimizer's hyper-parameters; the weight decay only where the
    /// optimizer applies one (AdamW, LAMB).
    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr as f32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.epsilon as f32,
            weight_decay: if self.optimizer.decays() {
                self.weight_decay as f32
            } else {
                0.0
            },
        }
    }

    /// Optimizer steps of an epoch of `rows` rows: each takes up to
    /// `batch · accumulate` of them.
    pub fn steps_per_epoch(&self, rows: usize) -> usize {
        rows.div_ceil(self.batch.saturating_mul(self.accumulate).max(1))
    }

    /// The run's learning-rate schedule on `rows` training rows: peak =
    /// `lr` scaled for `batch`, over `epochs` × steps per epoch. It depends
    /// only on these settings, so a resumed run continues it exactly. With
    /// the lab's settings every step's rate is exactly `lr as f32`.
    pub fn lr_schedule(&self, rows: usize) -> Result<LrSchedule> {
        if self.batch == 0 {
            fail!(Settings, "--batch must be at least 1");
        }
        if self.lr_scaling != BatchScaling::None && self.reference_batch == 0 {
            fail!(
                Settings,
                "--lr-scaling {} needs --reference-batch ≥ 1",
                self.lr_scaling.name()
            );
        }
        if !(0.0..=1.0).contains(&self.final_lr) {
            fail!(
                Settings,
                "--final-lr {} must be a fraction of the peak learning rate in [0, 1]",
                self.final_lr
            );
        }
        let peak = scaled_peak(
            self.lr as f32,
            self.batch,
            self.reference_batch.max(1),
            self.lr_scaling,
        )?;
        let per_epoch = self.steps_per_epoch(rows);
        let total = (self.epochs as u64).checked_mul(per_epoch as u64);
        let total = match total.and_then(|t| u32::try_from(t).ok()) {
            Some(t) => t,
            None => fail!(
                Settings,
                "{} epochs × {per_epoch} steps exceed the step counter's range",
                self.epochs
            ),
        };
        let warmup = self.warmup.steps(per_epoch)?;
        if warmup > total as u64 {
            fail!(
                Settings,
                "--warmup {} is {warmup} steps, longer than the run's {total} ({} epochs × {per_epoch} steps)",
                self.warmup.describe(),
                self.epochs
            );
        }
        Ok(LrSchedule::new(
            self.schedule,
            peak,
            warmup as u32,
            total,
            self.final_lr as f32,
        )?)
    }
}

/// Per-epoch losses, named as Keras' History names them, and the learning
/// rate of every step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    /// The learning rate of each optimizer step, in order (empty in
    /// histories written before it was recorded).
    #[serde(default)]
    pub lr: Vec<f64>,
}

impl History {
    pub fn epochs_done(&self) -> usize {
        self.loss.len()
    }

    pub fn to_csv(&self) -> String {
        let mut s = String::from("epoch,loss,val_loss\n");
        for (i, (l, v)) in self.loss.iter().zip(&self.val_loss).enumerate() {
            s += &format!("{},{l},{v}\n", i + 1);
        }
        s
    }
}

pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub steps: usize,
    pub loss: f64,
    pub val_loss: f64,
    /// Training time of the epoch (validation excluded).
    pub train_seconds: f64,
    pub samples_per_second: f64,
}

pub trait FitObserver: StepObserver {
    fn on_epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize);
    /// After each epoch, with the history including it: the place to
    /// checkpoint. An error stops training.
    fn on_epoch_end(
        &mut self,
        stats: &EpochStats,
        history: &History,
        backend: &mut dyn Backend,
    ) -> Result<()>;
}

/// What a stopped run keeps, `done` epochs in.
fn kept(done: usize) -> String {
    if done == 0 {
        "no epoch had finished, so there is no checkpoint".to_string()
    } else {
        format!("the last good checkpoint (epoch {done}) is kept")
    }
}

/// How a run met its `target_val_loss`, counted over this `fit` call
/// (a resumed run's earlier epochs are counted in `epoch`, `steps` and
/// `samples`, its earlier time is not).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReached {
    /// The 1-based epoch whose validation loss first met the target.
    pub epoch: usize,
    /// Optimizer steps and training samples up to the end of that epoch.
    pub steps: u64,
    pub samples: u64,
    /// Training time (validation excluded) and wall time of this call up to
    /// that epoch's validation.
    pub train_seconds: f64,
    pub wall_seconds: f64,
}

/// What `fit` tells its caller besides the history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitOutcome {
    /// Set when `target_val_loss` was met (training stopped there).
    pub reached: Option<TargetReached>,
}

/// Trains from `history.epochs_done()` up to `cfg.epochs` (or the first
/// epoch meeting `cfg.target_val_loss`), validating on `validation` after
/// each epoch. The shuffle of each epoch depends only on the seed and the
/// epoch, and the schedule only on the settings and the step, so a resumed
/// run continues exactly.
pub fn fit(
    backend: &mut dyn Backend,
    train: &Dataset,
    validation: &Dataset,
    cfg: &TrainConfig,
    history: &mut History,
    observer: &mut dyn FitObserver,
) -> Result<FitOutcome> {
    let schedule = cfg.lr_schedule(train.rows)?;
    if let Some(t) = cfg.target_val_loss {
        if !(t.is_finite() && t > 0.0) {
            fail!(
                Settings,
                "--target-val-loss {t} must be a positive finite number"
            );
        }
    }
    if cfg.accumulate == 0 {
        fail!(Settings, "--accumulate must be at least 1");
    }
    backend.set_schedule(schedule)?;
    let steps = cfg.steps_per_epoch(train.rows);
    // Histories written before rates were recorded get the rates of their
    // epochs filled in (a pure function of the step).
    let done_steps = history.epochs_done() * steps;
    if history.lr.len() != done_steps {
        history.lr = (1..=done_steps)
            .map(|s| schedule.lr_at(s as u32) as f64)
            .collect();
    }
    let started = Instant::now();
    let mut train_total = 0.0;
    for epoch in history.epochs_done()..cfg.epochs {
        observer.on_epoch_start(epoch + 1, cfg.epochs, steps);
        let perm = epoch_permutation(cfg.seed, epoch as u64, train.rows);
        let start = Instant::now();
        let loss = backend
            .train_epoch(train, &perm, cfg.batch, observer)
            .map_err(|e| match e {
                Error::NonFiniteLoss(nf) => err!(
                    Diverged,
                    "non-finite loss at epoch {}, {}; {}",
                    epoch + 1,
                    nf.step.map_or(
                        "in one of its steps (the GPU sums the epoch's loss on the device)"
                            .to_string(),
                        |s| format!("step {s} of {steps}")
                    ),
                    kept(epoch)
                ),
                Error::StepInterrupted(cause) => Error::Interrupted {
                    epoch: epoch + 1,
                    kept: kept(epoch),
                    cause,
                },
                e => e,
            })?;
        let train_seconds = start.elapsed().as_secs_f64();
        train_total += train_seconds;
        let val_loss = backend.evaluate(validation, false)?.loss;
        if !val_loss.is_finite() {
            fail!(
                Diverged,
                "non-finite validation loss after epoch {}",
                epoch + 1
            );
        }
        history.loss.push(loss);
        history.val_loss.push(val_loss);
        let first = epoch * steps + 1;
        history
            .lr
            .extend((first..first + steps).map(|s| schedule.lr_at(s as u32) as f64));
        let stats = EpochStats {
            epoch: epoch + 1,
            epochs: cfg.epochs,
            steps,
            loss,
            val_loss,
            train_seconds,
            samples_per_second: train.rows as f64 / train_seconds.max(1e-9),
        };
        observer.on_epoch_end(&stats, history, backend)?;
        if cfg.target_val_loss.is_some_and(|t| val_loss <= t) {
            let done = (epoch + 1) as u64;
            return Ok(FitOutcome {
                reached: Some(TargetReached {
                    epoch: epoch + 1,
                    steps: done * steps as u64,
                    samples: done * train.rows as u64,
                    train_seconds: train_total,
                    wall_seconds: started.elapsed().as_secs_f64(),
                }),
            });
        }
    }
    Ok(FitOutcome::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_settings_are_keras_adam() {
        let cfg = TrainConfig::lab();
        assert_eq!(cfg.adam(), AdamConfig::default());
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(
            json.contains("\"beta1\":0.9,") && json.contains("\"lr\":0.001"),
            "{json}"
        );
        assert_eq!(cfg.steps_per_epoch(60_000), 235);
        let accumulated = TrainConfig {
            batch: 8,
            accumulate: 4,
            ..cfg
        };
        assert_eq!(accumulated.steps_per_epoch(64), 2);
        assert_eq!(accumulated.steps_per_epoch(65), 3);
        // A checkpoint from before --accumulate trains one batch per step.
        let mut old = serde_json::to_value(TrainConfig::lab()).unwrap();
        old.as_object_mut().unwrap().remove("accumulate");
        let read: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(read.accumulate, 1);
    }
}
