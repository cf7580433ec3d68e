//! A stop request (SIGINT in the CLI) ends the epoch after the current step
//! on the CPU backend: the epoch is neither recorded nor saved, and the
//! error says which epoch's checkpoint is kept.

use dae_data::testing::flat_dataset;
use dae_data::Pixels;
use dae_model::{
    fit, Architecture, Backend, CpuBackend, EpochStats, FitObserver, History, Interrupted,
    StepObserver, TrainConfig, TrainState,
};
use dae_model::{Error, Result};

/// Asks to stop at step `stop_at` of epoch `in_epoch` (1-based).
struct StopAt {
    in_epoch: usize,
    stop_at: usize,
    epoch: usize,
    step: usize,
    saved: Vec<usize>,
}

impl StepObserver for StopAt {
    fn on_step(&mut self, step: usize, _: usize, _: Option<f64>) {
        self.step = step;
    }
    fn stop_requested(&self) -> bool {
        self.epoch == self.in_epoch && self.step >= self.stop_at
    }
}

impl FitObserver for StopAt {
    fn on_epoch_start(&mut self, epoch: usize, _: usize, _: usize) {
        self.epoch = epoch;
        self.step = 0;
    }
    fn on_epoch_end(&mut self, s: &EpochStats, _: &History, _: &mut dyn Backend) -> Result<()> {
        self.saved.push(s.epoch);
        Ok(())
    }
}

#[test]
fn a_stop_request_ends_the_epoch_after_the_current_step() {
    let pixels: Vec<f32> = (0..160).map(|i| (i % 5) as f32 / 4.0).collect();
    let data = flat_dataset("d", 40, 4, Pixels::F32(pixels.into()));
    let arch = Architecture::new(4, vec![2]).unwrap();
    let cfg = TrainConfig {
        epochs: 5,
        batch: 8,
        ..TrainConfig::lab()
    };
    let mut backend = CpuBackend::new(
        &arch,
        cfg.adam(),
        cfg.batch,
        TrainState::initialize(&arch, 1),
    )
    .unwrap();
    let mut history = History::default();
    let mut observer = StopAt {
        in_epoch: 3,
        stop_at: 2,
        epoch: 0,
        step: 0,
        saved: Vec::new(),
    };
    let err = fit(
        &mut backend,
        &data,
        &data,
        &cfg,
        &mut history,
        &mut observer,
    )
    .unwrap_err();
    let Error::Interrupted {
        epoch,
        cause: Interrupted { step },
        ..
    } = &err
    else {
        panic!("an Interrupted error, got {err}");
    };
    assert_eq!((*epoch, *step), (3, 2));
    let text = format!("{err:#}");
    assert!(
        text.contains("epoch 3") && text.contains("(epoch 2) is kept"),
        "{text}"
    );
    assert_eq!(observer.saved, [1, 2]);
    assert_eq!(history.epochs_done(), 2);
    // Two steps of epoch 3 ran: 2 full epochs of 5 steps, then 2.
    assert_eq!(backend.state().unwrap().step, 12);
}
