//! `dae check`'s model-level cases, run by the device backend itself (the
//! code that drives a GPU: its buffers, split-K scratch, recorded and
//! replayed steps, device-held batch offset and step counter, inference
//! chunks) on the emulator, against the CPU backend under the model
//! tolerances, in every precision.

use dae_core::check::{CaseResult, Selection};
use dae_core::Precision;
use dae_data::Dataset;
use dae_emu::{suite_seed, Emulator, MmaModel};
use dae_model::gpu_check;

fn lab_test_data() -> Dataset {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    dae_data::load(&dir, None).unwrap().test.head(2_000)
}

fn report(cases: &[CaseResult]) -> Vec<String> {
    assert!(!cases.is_empty(), "no model case ran");
    for c in cases {
        println!("{}", c.row());
    }
    cases
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{c:?}"))
        .collect()
}

/// One step at batch 256 and 97 (a ragged batch) with the plans of 132 SMs
/// (an H100: the small products split over k, one k-tile per split), and
/// at 256 with 2 SMs (no splits: long k loops).
#[test]
fn train_step_on_the_emulator_matches_the_cpu_backend() {
    let (data, seed) = (lab_test_data(), suite_seed());
    println!(
        "suite seed {seed} (DAE_CHECK_SEED), {:?} MMA (DAE_EMU_MMA)",
        MmaModel::from_env()
    );
    let mut failed = Vec::new();
    for (sm, batch) in [(132, 256), (132, 97), (2, 256)] {
        for p in Precision::ALL {
            let open = || Ok(Emulator::new(sm).with_mma(MmaModel::from_env()));
            let all = Selection::default();
            let cases = gpu_check::train_step(open, &data, p, batch, seed, &all).unwrap();
            failed.extend(report(&cases));
        }
    }
    assert!(
        failed.is_empty(),
        "seed {seed}: {} failed: {failed:#?}",
        failed.len()
    );
}

/// A short epoch as a GPU runs it (the full-batch step recorded once and
/// replayed, then the ragged last batch), and the validation loss through
/// the inference path.
#[test]
fn epoch_on_the_emulator_matches_the_cpu_backend() {
    let (data, seed) = (lab_test_data(), suite_seed());
    println!(
        "suite seed {seed} (DAE_CHECK_SEED), {:?} MMA (DAE_EMU_MMA)",
        MmaModel::from_env()
    );
    let (train, validation) = (data.head(300), data.head(700));
    let mut failed = Vec::new();
    for p in Precision::ALL {
        let open = || Ok(Emulator::new(132).with_mma(MmaModel::from_env()));
        let all = Selection::default();
        let cases = gpu_check::epoch(open, &train, &validation, p, 128, seed, &all).unwrap();
        failed.extend(report(&cases));
    }
    assert!(
        failed.is_empty(),
        "seed {seed}: {} failed: {failed:#?}",
        failed.len()
    );
}
