//! The GPU regression cases. They need a CUDA device, so a plain
//! `cargo test` lists them as ignored (never as passed); on a GPU machine
//! `cargo test -p dae-model --test gpu -- --ignored` runs them, and there a
//! missing device fails them. `dae check` runs the same cases, plus the
//! 65,536-row shapes.

use dae_core::cuda::check::{kernel_cases, Selection, DEFAULT_SEED};
use dae_core::cuda::{Gpu, Precision};
use dae_model::gpu_check;

fn gpu() -> Gpu {
    if let Err(why) = dae_core::cuda_status() {
        panic!("no usable CUDA device: {why}");
    }
    Gpu::open().expect("a CUDA device is present but could not be opened")
}

#[test]
#[ignore = "needs a CUDA device: cargo test -p dae-model --test gpu -- --ignored"]
fn kernels_match_float64_reference() {
    let cases = kernel_cases(&gpu(), DEFAULT_SEED, &Selection::default(), false).unwrap();
    let failed: Vec<_> = cases.iter().filter(|c| c.failed()).collect();
    assert!(
        failed.is_empty(),
        "seed {DEFAULT_SEED}: failed cases: {failed:#?}"
    );
}

#[test]
#[ignore = "needs a CUDA device: cargo test -p dae-model --test gpu -- --ignored"]
fn train_step_and_epoch_match_cpu() {
    drop(gpu());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    let splits = dae_data::load(&dir, None).unwrap();
    let train = splits.train.head(5_000);
    let validation = splits.test.head(1_000);
    let all = Selection::default();
    for p in Precision::ALL {
        let mut cases =
            gpu_check::train_step(Gpu::open, &splits.train, p, 256, DEFAULT_SEED, &all).unwrap();
        cases.extend(
            gpu_check::epoch(Gpu::open, &train, &validation, p, 256, DEFAULT_SEED, &all).unwrap(),
        );
        let failed: Vec<_> = cases.iter().filter(|c| c.failed()).collect();
        assert!(
            failed.is_empty(),
            "{} (seed {DEFAULT_SEED}): failed cases: {failed:#?}",
            p.name()
        );
    }
}
