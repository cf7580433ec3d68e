//! The GPU regression cases, run by `cargo test` when a CUDA device is
//! present (`dae check` runs the same, plus the 65,536-row shapes).

use dae_core::cuda::check::kernel_cases;
use dae_core::cuda::{Gpu, Precision};
use dae_model::gpu_check;
use std::io::Write;

fn gpu_or_skip(test: &str) -> Option<Gpu> {
    if let Err(why) = dae_core::cuda_status() {
        // Straight to stderr: libtest captures println! of passing tests,
        // and a skip must be visible.
        let _ = writeln!(std::io::stderr(), "{test}: skipped: no CUDA device ({why})");
        return None;
    }
    Some(Gpu::open().expect("a CUDA device is present but could not be opened"))
}

#[test]
fn kernels_match_float64_reference() {
    let Some(gpu) = gpu_or_skip("kernels_match_float64_reference") else {
        return;
    };
    let cases = kernel_cases(&gpu, false).unwrap();
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed()).collect();
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
}

#[test]
fn train_step_and_epoch_match_cpu() {
    if gpu_or_skip("train_step_and_epoch_match_cpu").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    let splits = dae_data::load(&dir, None).unwrap();
    let train = splits.train.head(5_000);
    let validation = splits.test.head(1_000);
    for p in Precision::ALL {
        let mut cases = gpu_check::train_step(Gpu::open, &splits.train, p, 256, 3).unwrap();
        cases.extend(gpu_check::epoch(Gpu::open, &train, &validation, p, 256, 3).unwrap());
        let failed: Vec<_> = cases.iter().filter(|c| !c.passed()).collect();
        assert!(failed.is_empty(), "{}: failed cases: {failed:#?}", p.name());
    }
}
