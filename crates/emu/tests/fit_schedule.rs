//! The run's schedule through `fit` on the device backend (the CUDA kernels
//! on the emulator, the update's rate evaluated from the device's step
//! counter): `Backend::set_schedule` reaches the recorded step, and a run
//! stopped in epoch 2 and resumed from epoch 1's state ends bit for bit
//! where the uninterrupted run does.

use dae_core::rng::{Purpose, Rng};
use dae_core::schedule::{ScheduleKind, Warmup};
use dae_core::Precision;
use dae_data::testing::flat_dataset;
use dae_data::{Dataset, Pixels};
use dae_emu::{suite_seed, Emulator};
use dae_model::{
    fit, Architecture, Backend, DeviceBackend, EpochStats, Error, FitObserver, History, Result,
    StepObserver, TrainConfig, TrainState,
};

fn data(seed: u64) -> Dataset {
    let mut rng = Rng::named(seed, Purpose::Test, "fit schedule data");
    let pixels: Vec<f32> = (0..40 * 12).map(|_| rng.uniform_in(0.0, 1.0)).collect();
    flat_dataset("d", 40, 12, Pixels::F32(pixels.into()))
}

/// Keeps epoch ends' state and history; asks to stop after the first step
/// of epoch `stop_in`.
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

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_schedule_reaches_the_device_and_resumes_bit_for_bit() {
    let seed = suite_seed();
    let d = data(seed);
    let arch = Architecture::new(12, vec![6, 3]).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch: 8,
        seed,
        lr: 1e-2,
        schedule: ScheduleKind::Linear,
        warmup: Warmup::Steps(3),
        final_lr: 0.0,
        ..TrainConfig::lab()
    };
    let backend = |cfg: &TrainConfig, state: TrainState| {
        DeviceBackend::on(
            Emulator::new(4),
            &arch,
            cfg.adam(),
            Precision::Fp32,
            cfg.batch,
            state,
        )
        .unwrap()
    };
    let run = |cfg: &TrainConfig| {
        let mut b = backend(cfg, TrainState::initialize(&arch, seed));
        let mut h = History::default();
        fit(&mut b, &d, &d, cfg, &mut h, &mut Keeper::default()).unwrap();
        (b.state().unwrap(), h)
    };
    let (want, want_history) = run(&cfg);

    let mut b = backend(&cfg, TrainState::initialize(&arch, seed));
    let mut h = History::default();
    let mut first = Keeper {
        stop_in: Some(2),
        ..Keeper::default()
    };
    let err = fit(&mut b, &d, &d, &cfg, &mut h, &mut first).unwrap_err();
    assert!(matches!(err, Error::Interrupted { epoch: 2, .. }), "{err}");
    let (state, mut h) = first.kept.expect("epoch 1 ended");
    let mut b = backend(&cfg, state);
    fit(&mut b, &d, &d, &cfg, &mut h, &mut Keeper::default()).unwrap();
    let got = b.state().unwrap();
    let what = format!("seed {seed}");
    assert_eq!(bits(&got.params), bits(&want.params), "{what}");
    assert_eq!(bits(&got.m), bits(&want.m), "{what}");
    assert_eq!(bits(&got.v), bits(&want.v), "{what}");
    assert_eq!(h, want_history, "{what}");

    // The schedule reached the device's update: a constant rate ends elsewhere.
    let constant = TrainConfig {
        schedule: ScheduleKind::Constant,
        warmup: Warmup::default(),
        ..cfg.clone()
    };
    assert_ne!(bits(&run(&constant).0.params), bits(&want.params), "{what}");
}
