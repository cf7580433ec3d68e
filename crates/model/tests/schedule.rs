//! The run's learning-rate schedule through `fit` on the CPU backend: each
//! step's rate is recorded, the lab's default is exactly its constant `lr`,
//! and a run interrupted and resumed from its last epoch's state and history
//! ends bit for bit where the uninterrupted run does.

use dae_core::rng::{Purpose, Rng};
use dae_core::schedule::{ScheduleKind, Warmup};
use dae_data::testing::flat_dataset;
use dae_data::{Dataset, Pixels};
use dae_model::{
    fit, Architecture, Backend, CpuBackend, EpochStats, FitObserver, History, StepObserver,
    TrainConfig, TrainState,
};
use dae_model::{Error, Result};

const SEED: u64 = 12;

/// 50 rows of 6 values in [0, 1] from a fixed seed.
fn data() -> Dataset {
    let mut rng = Rng::new(SEED, Purpose::Init, 99);
    let pixels: Vec<f32> = (0..300).map(|_| rng.uniform_in(0.0, 1.0)).collect();
    flat_dataset("d", 50, 6, Pixels::F32(pixels.into()))
}

fn arch() -> Architecture {
    Architecture::new(6, vec![4, 2]).unwrap()
}

/// Keeps the state and history after each epoch; with `stop_in`, asks to
/// stop at the first step of that (1-based) epoch, as a signal would.
#[derive(Default)]
struct Keeper {
    stop_in: Option<usize>,
    epoch: usize,
    stepped: bool,
    kept: Option<(TrainState, History)>,
}

impl StepObserver for Keeper {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {
        self.stepped = true;
    }
    fn stop_requested(&self) -> bool {
        self.stop_in == Some(self.epoch) && self.stepped
    }
}

impl FitObserver for Keeper {
    fn on_epoch_start(&mut self, epoch: usize, _: usize, _: usize) {
        self.epoch = epoch;
        self.stepped = false;
    }
    fn on_epoch_end(&mut self, _: &EpochStats, h: &History, b: &mut dyn Backend) -> Result<()> {
        self.kept = Some((b.state()?, h.clone()));
        Ok(())
    }
}

fn backend(cfg: &TrainConfig, state: TrainState) -> CpuBackend {
    CpuBackend::new(&arch(), cfg.adam(), cfg.batch, state).unwrap()
}

/// Trains `cfg` from fresh weights to the end; returns the final state.
fn uninterrupted(cfg: &TrainConfig, d: &Dataset) -> (TrainState, History) {
    let mut b = backend(cfg, TrainState::initialize(&arch(), SEED));
    let mut history = History::default();
    fit(&mut b, d, d, cfg, &mut history, &mut Keeper::default()).unwrap();
    (b.state().unwrap(), history)
}

fn warm_cosine() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch: 8,
        seed: SEED,
        lr: 1e-2,
        schedule: ScheduleKind::Cosine,
        warmup: Warmup::Steps(5),
        final_lr: 0.1,
        ..TrainConfig::lab()
    }
}

#[test]
fn a_resumed_schedule_continues_bit_for_bit() {
    let d = data();
    let cfg = warm_cosine();
    let (want, want_history) = uninterrupted(&cfg, &d);

    // Stopped in epoch 2; resumed from epoch 1's state and history.
    let mut b = backend(&cfg, TrainState::initialize(&arch(), SEED));
    let mut history = History::default();
    let mut first = Keeper {
        stop_in: Some(2),
        ..Keeper::default()
    };
    let err = fit(&mut b, &d, &d, &cfg, &mut history, &mut first).unwrap_err();
    assert!(matches!(err, Error::Interrupted { epoch: 2, .. }), "{err}");
    let (state, mut history) = first.kept.expect("epoch 1 ended");
    assert_eq!((state.step, history.epochs_done()), (7, 1));
    let mut b = backend(&cfg, state);
    fit(&mut b, &d, &d, &cfg, &mut history, &mut Keeper::default()).unwrap();
    let got = b.state().unwrap();

    assert_eq!(got.step, want.step);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got.params), bits(&want.params));
    assert_eq!(bits(&got.m), bits(&want.m));
    assert_eq!(bits(&got.v), bits(&want.v));
    assert_eq!(history, want_history);

    // The schedule reached the update: a constant rate ends elsewhere.
    let constant = TrainConfig {
        schedule: ScheduleKind::Constant,
        warmup: Warmup::default(),
        ..cfg
    };
    assert_ne!(
        bits(&uninterrupted(&constant, &d).0.params),
        bits(&want.params)
    );
}

#[test]
fn each_steps_rate_is_recorded_rising_then_falling() {
    let d = data();
    let cfg = warm_cosine();
    let (_, history) = uninterrupted(&cfg, &d);
    let lr = &history.lr;
    // 3 epochs × ⌈50/8⌉ = 7 steps.
    assert_eq!(lr.len(), 21);
    let peak = 1e-2f32 as f64;
    assert_eq!(lr[0], (peak * (1.0 / 5.0)) as f32 as f64);
    assert_eq!(lr[4], peak);
    assert!(lr[..5].windows(2).all(|w| w[0] < w[1]), "{lr:?}");
    assert!(lr[4..].windows(2).all(|w| w[0] > w[1]), "{lr:?}");
    assert_eq!(lr[20], (1e-2f32 * 0.1f32) as f64);
}

#[test]
fn the_labs_default_rate_is_exactly_lr_every_step() {
    let d = data();
    let cfg = TrainConfig {
        epochs: 2,
        batch: 8,
        seed: SEED,
        ..TrainConfig::lab()
    };
    let (_, history) = uninterrupted(&cfg, &d);
    assert_eq!(history.lr, vec![1e-3f32 as f64; 14]);
}

#[test]
fn bad_schedules_are_refused_before_training() {
    let d = data();
    let check = |cfg: TrainConfig, want: &str| {
        let mut b = backend(&cfg, TrainState::initialize(&arch(), SEED));
        let mut history = History::default();
        let msg = fit(&mut b, &d, &d, &cfg, &mut history, &mut Keeper::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains(want), "{msg}");
        assert_eq!(b.state().unwrap().step, 0, "nothing trained");
    };
    // 3 epochs × 7 steps = 21.
    check(
        TrainConfig {
            warmup: Warmup::Steps(22),
            ..warm_cosine()
        },
        "22 steps, longer than the run's 21",
    );
    check(
        TrainConfig {
            warmup: Warmup::Epochs(3.1),
            ..warm_cosine()
        },
        "longer than the run's 21",
    );
    check(
        TrainConfig {
            final_lr: 1.5,
            ..warm_cosine()
        },
        "--final-lr 1.5",
    );
    check(
        TrainConfig {
            lr_scaling: dae_core::schedule::BatchScaling::Sqrt,
            reference_batch: 0,
            ..warm_cosine()
        },
        "--reference-batch",
    );
}
