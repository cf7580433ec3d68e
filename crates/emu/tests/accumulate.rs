//! Gradient accumulation as a GPU runs it (each optimizer step's
//! micro-batches recorded as one graph, the scratch gradient added by
//! `accumulate_add`, the device-held offset advanced per micro-batch) on the
//! emulator, against the CPU backend: an epoch of the lab model with a
//! partial last step, within the fp32 model tolerance, and the same bits on
//! a second emulated run; the device holds what the memory plan says.

use dae_core::reference::relative_error;
use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::{AdamConfig, Precision};
use dae_data::Dataset;
use dae_emu::{suite_seed, Emulator};
use dae_model::gpu_check::model_tolerance;
use dae_model::memory::MemoryPlan;
use dae_model::{Architecture, Backend, CpuBackend, DeviceBackend, Silent, TrainState};

fn lab_test_data() -> Dataset {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    dae_data::load(&dir, None).unwrap().test.head(200)
}

/// (epoch loss, state) after one epoch on `backend`.
fn epoch(
    backend: &mut dyn Backend,
    data: &Dataset,
    perm: &[u32],
    batch: usize,
) -> (f64, TrainState) {
    let loss = backend.train_epoch(data, perm, batch, &mut Silent).unwrap();
    (loss, backend.state().unwrap())
}

fn as64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn accumulated_epoch_on_the_emulator_matches_the_cpu_backend() {
    let seed = suite_seed();
    let data = lab_test_data();
    let arch = Architecture::new(data.dim, vec![128, 64, 32]).unwrap();
    let model_seed = Rng::named(seed, Purpose::Test, "accumulate epoch").next_u64();
    let state = TrainState::initialize(&arch, model_seed);
    let perm = epoch_permutation(model_seed, 0, data.rows);
    let adam = AdamConfig::default();
    // 200 rows in steps of 3 × 32 = 96: two whole steps, then 8 rows.
    let (batch, k) = (32, 3);
    let what = format!("seed {seed} (DAE_CHECK_SEED), batch {batch} × accumulate {k}");

    let mut cpu = CpuBackend::new(&arch, adam, batch, state.clone())
        .unwrap()
        .with_accumulation(k)
        .unwrap();
    let (want_loss, want) = epoch(&mut cpu, &data, &perm, batch);
    assert_eq!(want.step, 3, "{what}: optimizer steps");

    let run = || {
        let dev = Emulator::new(132);
        let mut emu = DeviceBackend::on(dev, &arch, adam, Precision::Fp32, batch, state.clone())
            .unwrap()
            .with_accumulation(k)
            .unwrap();
        let out = epoch(&mut emu, &data, &perm, batch);
        // The memory plan counts the scratch gradient.
        let plan = MemoryPlan::device(
            &arch,
            dae_model::Optimizer::Adam,
            batch,
            132,
            data.rows,
            data.bytes(),
        )
        .unwrap()
        .accumulating(&arch, k);
        assert_eq!(emu.device().live_bytes(), plan.total(), "{what}");
        out
    };
    let (loss, got) = run();
    assert_eq!(got.step, want.step, "{what}: optimizer steps");
    let tol = model_tolerance(Precision::Fp32);
    assert!(
        (loss - want_loss).abs() <= tol * want_loss,
        "{what}: loss {loss} vs {want_loss}"
    );
    for (name, g, w) in [
        ("parameters", &got.params, &want.params),
        ("first moments", &got.m, &want.m),
        ("second moments", &got.v, &want.v),
    ] {
        let e = relative_error(g, &as64(w));
        println!("{what}: {name} normwise {e:e} (tolerance {tol:e})");
        assert!(e < tol, "{what}: {name} relative error {e}");
    }
    let (again_loss, again) = run();
    assert_eq!(again_loss.to_bits(), loss.to_bits(), "{what}: loss bits");
    assert!(
        again
            .params
            .iter()
            .zip(&got.params)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{what}: parameters differ between emulated runs"
    );
}
