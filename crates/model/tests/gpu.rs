//! The GPU regression cases. They need a CUDA device, so a plain
//! `cargo test` lists them as ignored (never as passed); on a GPU machine
//! `cargo test -p dae-model --test gpu -- --ignored` runs them, and there a
//! missing device fails them. `dae check` runs the same cases, plus the
//! 65,536-row shapes.

use dae_core::check::{kernel_cases, Selection, DEFAULT_SEED};
use dae_core::cuda::{Gpu, GpuOptions};
use dae_core::Precision;
use dae_model::gpu_check;
use std::rc::Rc;

/// The GPU, opened once per test (kernels compiled, not cached on disk).
fn gpu() -> Rc<Gpu> {
    match Gpu::open(&GpuOptions::default()) {
        Ok(gpu) => Rc::new(gpu),
        Err(why) => panic!("no usable CUDA device: {why}"),
    }
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
    let gpu = gpu();
    let open = || Ok(gpu.clone());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    let splits = dae_data::load(&dir, None).unwrap();
    let train = splits.train.head(5_000);
    let validation = splits.test.head(1_000);
    let all = Selection::default();
    for p in Precision::ALL {
        let mut cases =
            gpu_check::train_step(open, &splits.train, p, 256, DEFAULT_SEED, &all).unwrap();
        cases.extend(
            gpu_check::epoch(open, &train, &validation, p, 256, DEFAULT_SEED, &all).unwrap(),
        );
        let failed: Vec<_> = cases.iter().filter(|c| c.failed()).collect();
        assert!(
            failed.is_empty(),
            "{} (seed {DEFAULT_SEED}): failed cases: {failed:#?}",
            p.name()
        );
    }
}
