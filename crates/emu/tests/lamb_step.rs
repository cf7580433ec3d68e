//! The training step with LAMB (issue 12) as a GPU runs it: the device
//! backend on the emulator (kernels/lamb.cu over the table it uploads, the
//! recorded step replayed, the schedule read from the device step counter)
//! against the CPU backend (cpu::lamb_step through the same op) under the
//! fp32 model tolerance, and the same bits on two fresh emulators.

use dae_core::reference::relative_error;
use dae_core::rng::epoch_permutation;
use dae_core::{AdamConfig, Precision};
use dae_data::Dataset;
use dae_emu::{suite_seed, Emulator};
use dae_model::gpu_check::model_tolerance;
use dae_model::{Architecture, Backend, CpuBackend, DeviceBackend, Optimizer, Silent, TrainState};

fn lab_test_data() -> Dataset {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    dae_data::load(&dir, None).unwrap().test.head(300)
}

/// (epoch loss, the state after it).
fn epoch(
    backend: &mut dyn Backend,
    data: &Dataset,
    perm: &[u32],
    batch: usize,
) -> (f64, TrainState) {
    let loss = backend.train_epoch(data, perm, batch, &mut Silent).unwrap();
    (loss, backend.state().unwrap())
}

/// Three steps (128, 128 and a ragged 44 rows) of the lab model.
#[test]
fn a_lamb_epoch_on_the_emulator_matches_the_cpu_backend() {
    let (data, seed) = (lab_test_data(), suite_seed());
    let arch = Architecture::new(data.dim, vec![128, 64, 32]).unwrap();
    let state = TrainState::initialize(&arch, seed);
    let perm = epoch_permutation(seed, 0, data.rows);
    let adam = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let batch = 128;
    let mut cpu = CpuBackend::new(&arch, adam, batch, state.clone())
        .and_then(|b| b.with_optimizer(Optimizer::Lamb))
        .unwrap();
    let (want_loss, want) = epoch(&mut cpu, &data, &perm, batch);
    let run = || {
        let emu = Emulator::new(132);
        let mut device = DeviceBackend::on(emu, &arch, adam, Precision::Fp32, batch, state.clone())
            .and_then(|b| b.with_optimizer(Optimizer::Lamb))
            .unwrap();
        epoch(&mut device, &data, &perm, batch)
    };
    let (first, second) = (run(), run());
    let tol = model_tolerance(Precision::Fp32);
    let (loss, got) = &first;
    assert_eq!(got.step, 3, "seed {seed}: the step counter");
    assert!(
        (loss - want_loss).abs() <= tol * want_loss,
        "seed {seed}: loss {loss} vs the CPU's {want_loss}"
    );
    let as64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    // The update (not the parameters, which it barely moves): what LAMB's
    // kernels computed.
    let update = |s: &TrainState| -> Vec<f32> {
        s.params
            .iter()
            .zip(&state.params)
            .map(|(a, b)| a - b)
            .collect()
    };
    let (got_update, want_update) = (update(got), update(&want));
    assert!(
        got_update.iter().any(|&d| d != 0.0),
        "seed {seed}: no parameter moved"
    );
    for (name, g, w) in [
        ("update", &got_update, &want_update),
        ("first moments", &got.m, &want.m),
        ("second moments", &got.v, &want.v),
    ] {
        let e = relative_error(g, &as64(w));
        println!("seed {seed}: {name} relative error {e:.2e} (tolerance {tol:e})");
        assert!(e <= tol, "seed {seed}: {name} relative error {e} > {tol}");
    }
    let bits = |(l, s): &(f64, TrainState)| {
        let f = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        (l.to_bits(), f(&s.params), f(&s.m), f(&s.v))
    };
    assert!(
        bits(&first) == bits(&second),
        "seed {seed}: two emulator runs differ"
    );
}
