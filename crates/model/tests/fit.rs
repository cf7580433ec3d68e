//! The epoch loop's contract with devices and observers, with a scripted
//! backend: checkpoints happen after each epoch, a non-finite loss stops
//! training with the epoch and step named, and the last good epoch is kept.

use dae_core::schedule::LrSchedule;
use dae_data::testing::flat_dataset;
use dae_data::{Dataset, Pixels};
use dae_model::Result;
use dae_model::{
    fit, Backend, EpochStats, Evaluation, FitObserver, History, NonFiniteLoss, StepObserver,
    TrainConfig, TrainState,
};

/// Trains "fine" until `fail_epoch` (1-based), then reports a NaN at step 3.
struct Scripted {
    epoch: usize,
    fail_epoch: usize,
}

impl Backend for Scripted {
    fn device(&self) -> String {
        "scripted".into()
    }
    fn load_state(&mut self, _: &TrainState) -> Result<()> {
        Ok(())
    }
    fn set_schedule(&mut self, _: LrSchedule) -> Result<()> {
        Ok(())
    }
    fn state(&mut self) -> Result<TrainState> {
        Ok(TrainState {
            params: vec![self.epoch as f32],
            m: vec![],
            v: vec![],
            step: 0,
        })
    }
    fn train_epoch(
        &mut self,
        _: &Dataset,
        perm: &[u32],
        batch: usize,
        o: &mut dyn StepObserver,
    ) -> Result<f64> {
        self.epoch += 1;
        for (step, rows) in perm.chunks(batch).enumerate() {
            if self.epoch == self.fail_epoch && step + 1 == 3 {
                return Err(NonFiniteLoss { step: Some(3) }.into());
            }
            o.on_step(step + 1, (step + 1) * rows.len(), Some(1.0));
        }
        Ok(1.0 / self.epoch as f64)
    }
    fn evaluate(&mut self, _: &Dataset, _: bool) -> Result<Evaluation> {
        Ok(Evaluation {
            loss: 0.5,
            row_loss: vec![],
        })
    }
    fn encode(&mut self, _: &Dataset, _: &[u32]) -> Result<Vec<f32>> {
        Ok(vec![])
    }
    fn reconstruct(&mut self, _: &Dataset, _: &[u32]) -> Result<Vec<f32>> {
        Ok(vec![])
    }
    fn loss_and_gradients(&mut self, _: &Dataset, _: &[u32]) -> Result<(f64, Vec<f32>)> {
        Ok((0.0, vec![]))
    }
}

#[derive(Default)]
struct Recorder {
    saved_epochs: Vec<usize>,
    saved_state: Vec<f32>,
}

impl StepObserver for Recorder {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
}

impl FitObserver for Recorder {
    fn on_epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn on_epoch_end(&mut self, s: &EpochStats, h: &History, b: &mut dyn Backend) -> Result<()> {
        assert_eq!(h.epochs_done(), s.epoch);
        self.saved_epochs.push(s.epoch);
        self.saved_state = b.state()?.params;
        Ok(())
    }
}

fn data() -> Dataset {
    flat_dataset("d", 100, 2, Pixels::F32(vec![0.5; 200].into()))
}

#[test]
fn divergence_names_epoch_and_step_and_keeps_the_last_good_epoch() {
    let d = data();
    let cfg = TrainConfig {
        epochs: 5,
        batch: 10,
        ..TrainConfig::lab()
    };
    let mut backend = Scripted {
        epoch: 0,
        fail_epoch: 3,
    };
    let mut history = History::default();
    let mut rec = Recorder::default();
    let err = fit(&mut backend, &d, &d, &cfg, &mut history, &mut rec).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("epoch 3, step 3 of 10"), "{msg}");
    assert!(msg.contains("last good checkpoint (epoch 2)"), "{msg}");
    assert_eq!(rec.saved_epochs, [1, 2]);
    assert_eq!(rec.saved_state, [2.0]);
    assert_eq!(history.loss, [1.0, 0.5]);
}

#[test]
fn resumed_history_continues_where_it_stopped() {
    let d = data();
    let cfg = TrainConfig {
        epochs: 4,
        batch: 30,
        ..TrainConfig::lab()
    };
    let mut history = History {
        loss: vec![9.0, 8.0],
        val_loss: vec![9.5, 8.5],
        lr: vec![],
    };
    let mut rec = Recorder::default();
    let mut backend = Scripted {
        epoch: 0,
        fail_epoch: 0,
    };
    fit(&mut backend, &d, &d, &cfg, &mut history, &mut rec).unwrap();
    assert_eq!(rec.saved_epochs, [3, 4]);
    assert_eq!(history.loss, [9.0, 8.0, 1.0, 0.5]);
    // The rates of the two old epochs are filled in: 4 epochs × 4 steps,
    // every one the lab's constant rate.
    assert_eq!(history.lr, vec![1e-3f32 as f64; 16]);
}

/// The scripted validation loss is 0.5 every epoch.
fn run_to_target(target: Option<f64>) -> Result<(dae_model::FitOutcome, History)> {
    let d = data();
    let cfg = TrainConfig {
        epochs: 3,
        batch: 30,
        target_val_loss: target,
        ..TrainConfig::lab()
    };
    let mut history = History::default();
    let mut backend = Scripted {
        epoch: 0,
        fail_epoch: 0,
    };
    let outcome = fit(
        &mut backend,
        &d,
        &d,
        &cfg,
        &mut history,
        &mut Recorder::default(),
    )?;
    Ok((outcome, history))
}

#[test]
fn a_met_target_stops_training_after_that_epoch() {
    let (outcome, history) = run_to_target(Some(0.5)).unwrap();
    let reached = outcome.reached.expect("0.5 ≤ 0.5 is met");
    assert_eq!((reached.epoch, reached.steps, reached.samples), (1, 4, 100));
    assert!(reached.train_seconds <= reached.wall_seconds);
    assert_eq!(history.epochs_done(), 1);

    let (outcome, history) = run_to_target(Some(0.49)).unwrap();
    assert_eq!(outcome.reached, None);
    assert_eq!(history.epochs_done(), 3);
    assert_eq!(run_to_target(None).unwrap().0.reached, None);
}

#[test]
fn a_target_must_be_positive_and_finite() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let msg = run_to_target(Some(bad)).unwrap_err().to_string();
        assert!(msg.contains("positive finite"), "{bad}: {msg}");
    }
}
