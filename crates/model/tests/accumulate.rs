//! Gradient accumulation (`--accumulate K`): an epoch of `--batch 8
//! --accumulate 4` on the CPU backend takes the optimizer steps of `--batch
//! 32` (the same rows, the same mean gradient, one update per 32 rows), the
//! last step of an epoch whose rows are not a multiple of 32 included; and
//! gives the same bits run to run.

use dae_core::reference::relative_error;
use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::AdamConfig;
use dae_data::{Dataset, Pixels};
use dae_model::{Architecture, Backend, CpuBackend, Silent, TrainConfig, TrainState};

/// One epoch of `batch`-row micro-batches, `accumulate` per step: the
/// epoch's loss and the state after it.
fn epoch(
    arch: &Architecture,
    data: &Dataset,
    perm: &[u32],
    batch: usize,
    accumulate: usize,
) -> (f64, TrainState) {
    let state = TrainState::initialize(arch, 9);
    let mut cpu = CpuBackend::new(arch, AdamConfig::default(), batch, state)
        .unwrap()
        .with_accumulation(accumulate)
        .unwrap();
    let loss = cpu.train_epoch(data, perm, batch, &mut Silent).unwrap();
    (loss, cpu.state().unwrap())
}

/// Every f32 of a state as its bits (so -0 and 0 differ).
fn bits(s: &TrainState) -> Vec<u32> {
    [&s.params, &s.m, &s.v]
        .iter()
        .flat_map(|v| v.iter().map(|x| x.to_bits()))
        .collect()
}

fn as64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn accumulated_micro_batches_take_the_full_batch_step() {
    let dim = 40;
    let arch = Architecture::new(dim, vec![16, 8]).unwrap();
    // 96 rows: 3 whole steps; 70: the last step 6 rows (one micro-batch);
    // 77: the last step 13 rows (micro-batches of 8 and 5).
    for rows in [96usize, 70, 77] {
        let seed = 11;
        let mut rng = Rng::new(seed, Purpose::Test, rows as u64);
        let pixels: Vec<u8> = (0..rows * dim).map(|_| rng.below(256) as u8).collect();
        let data = Dataset {
            name: "t".into(),
            rows,
            dim,
            pixels: Pixels::U8(pixels.into()),
            labels: None,
            image_shape: None,
        };
        let perm = epoch_permutation(seed, 0, rows);
        let what = format!("{rows} rows (seed {seed}), {}", arch.describe());

        let (full_loss, full) = epoch(&arch, &data, &perm, 32, 1);
        let (loss, got) = epoch(&arch, &data, &perm, 8, 4);
        let cfg = TrainConfig {
            batch: 8,
            accumulate: 4,
            ..TrainConfig::lab()
        };
        assert_eq!(got.step, full.step, "{what}: optimizer steps");
        assert_eq!(got.step as usize, cfg.steps_per_epoch(rows), "{what}");
        // The same rows and gradient scale; only the order in which the
        // rows' dW / db terms are summed differs (8-row sums added in
        // micro-batch order vs one 32-row sum): fp32 rounding, within 1e-5
        // normwise (Adam turns a gradient difference δ near g = 0 into at
        // most lr·δ/ε, far below it for these O(1e-3) terms).
        for (name, g, w) in [
            ("parameters", &got.params, &full.params),
            ("first moments", &got.m, &full.m),
            ("second moments", &got.v, &full.v),
        ] {
            let e = relative_error(g, &as64(w));
            assert!(e < 1e-5, "{what}: {name} relative error {e}");
        }
        // The loss is summed over the same values per step (in f64).
        assert!(
            (loss - full_loss).abs() <= 1e-6 * full_loss,
            "{what}: loss {loss} vs {full_loss}"
        );
        // Deterministic: the same bits again.
        let (again_loss, again) = epoch(&arch, &data, &perm, 8, 4);
        assert_eq!(again_loss.to_bits(), loss.to_bits(), "{what}: loss bits");
        assert_eq!(bits(&again), bits(&got), "{what}: state bits");
        assert_eq!(again.step, got.step);
    }
}

#[test]
fn zero_micro_batches_are_refused() {
    let arch = Architecture::new(4, vec![2]).unwrap();
    let state = TrainState::initialize(&arch, 1);
    let cpu = CpuBackend::new(&arch, AdamConfig::default(), 4, state).unwrap();
    let e = cpu.with_accumulation(0).err().expect("refused");
    assert!(e.to_string().contains("--accumulate"), "{e}");
}
