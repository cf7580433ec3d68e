//! The epoch loop shared by every device.

use crate::error::{err, fail};
use crate::Result;
use crate::{Backend, Error, StepObserver};
use dae_core::rng::epoch_permutation;
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
    /// Micro-batches of `batch` rows per optimizer step (`--accumulate`);
    /// checkpoints from before it train one per step.
    #[serde(default = "one")]
    pub accumulate: usize,
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
            accumulate: 1,
        }
    }

    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr as f32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.epsilon as f32,
            weight_decay: 0.0,
        }
    }

    /// Optimizer steps of an epoch of `rows` rows: each takes up to
    /// `batch · accumulate` of them.
    pub fn steps_per_epoch(&self, rows: usize) -> usize {
        rows.div_ceil(self.batch.saturating_mul(self.accumulate).max(1))
    }
}

/// Per-epoch losses, named as Keras' History names them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub loss: Vec<f64>,
    pub val_loss: Vec<f64>,
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

/// Trains from `history.epochs_done()` up to `cfg.epochs`, validating on
/// `validation` after each epoch. The shuffle of each epoch depends only on
/// the seed and the epoch, so a resumed run continues exactly.
pub fn fit(
    backend: &mut dyn Backend,
    train: &Dataset,
    validation: &Dataset,
    cfg: &TrainConfig,
    history: &mut History,
    observer: &mut dyn FitObserver,
) -> Result<()> {
    if cfg.batch == 0 {
        fail!(Settings, "--batch must be at least 1");
    }
    if cfg.accumulate == 0 {
        fail!(Settings, "--accumulate must be at least 1");
    }
    let steps = cfg.steps_per_epoch(train.rows);
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
    }
    Ok(())
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
