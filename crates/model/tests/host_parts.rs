//! The CPU replays a recorded step on all its threads at once, each taking
//! a share of the rows (or of the outputs) of every op
//! (`HostDevice::replay`). Each share is a product of its own, whose
//! blocking (and so whose fp32 rounding) follows its size: the bits depend
//! on the thread count, like any threaded BLAS's. What must hold, over
//! shapes that leave ragged shares (a last batch of 44 rows, widths that
//! are no multiple of anything), with Adam and with accumulated
//! micro-batches: the same thread count gives the same bits run after run,
//! and every thread count trains what one thread trains within fp32
//! rounding.

use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::AdamConfig;
use dae_data::{Dataset, Pixels};
use dae_model::{Architecture, Backend, CpuBackend, Silent, TrainState};

fn data(rows: usize, dim: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed, Purpose::Test, rows as u64);
    let pixels: Vec<u8> = (0..rows * dim).map(|_| rng.below(256) as u8).collect();
    Dataset {
        name: "parts".into(),
        rows,
        dim,
        pixels: Pixels::U8(pixels.into()),
        labels: None,
        image_shape: None,
    }
}

/// Two epochs on `threads` threads: every f32 of the state (as f64), then
/// the last epoch's loss and the validation loss.
fn two_epochs(
    threads: usize,
    arch: &Architecture,
    data: &Dataset,
    batch: usize,
    accumulate: usize,
) -> Vec<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let state = TrainState::initialize(arch, 3);
        let mut cpu = CpuBackend::new(arch, AdamConfig::default(), batch, state)
            .unwrap()
            .with_accumulation(accumulate)
            .unwrap();
        let perm = epoch_permutation(3, 0, data.rows);
        let mut loss = 0.0;
        for _ in 0..2 {
            loss = cpu.train_epoch(data, &perm, batch, &mut Silent).unwrap();
        }
        let s = cpu.state().unwrap();
        let mut out: Vec<f64> = [&s.params, &s.m, &s.v]
            .iter()
            .flat_map(|v| v.iter().map(|&x| x as f64))
            .collect();
        out.push(loss);
        out.push(cpu.evaluate(data, false).unwrap().loss);
        out
    })
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_thread_count_trains_the_same_model() {
    let seed = 21;
    // (input, encoder, rows, batch, micro-batches per step)
    let cases: [(usize, &[usize], usize, usize, usize); 3] = [
        (37, &[19, 5], 300, 128, 1),
        (784, &[128, 64, 32], 300, 256, 1),
        (53, &[17], 211, 16, 3),
    ];
    for (dim, encoder, rows, batch, accumulate) in cases {
        let arch = Architecture::new(dim, encoder.to_vec()).unwrap();
        let data = data(rows, dim, seed);
        let what = format!(
            "{} on {rows} rows, batch {batch}×{accumulate}, seed {seed}",
            arch.describe()
        );
        let one = two_epochs(1, &arch, &data, batch, accumulate);
        for threads in [1, 2, 3, 5] {
            let got = two_epochs(threads, &arch, &data, batch, accumulate);
            let again = two_epochs(threads, &arch, &data, batch, accumulate);
            assert!(
                bits(&got) == bits(&again),
                "{what}: {threads} threads differ run to run"
            );
            // Normwise over the state and the losses: fp32 rounding of
            // products of length ≤ 784, through two epochs of Adam.
            let diff: f64 = one.iter().zip(&got).map(|(x, y)| (x - y) * (x - y)).sum();
            let norm: f64 = one.iter().map(|x| x * x).sum();
            let e = (diff / norm).sqrt();
            assert!(
                e < 1e-5,
                "{what}: {threads} threads vs 1: relative error {e:.2e}"
            );
        }
    }
}
