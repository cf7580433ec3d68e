//! The kernel regression suite of `dae check`, run on the emulator.
use dae_core::cuda::check::kernel_cases;
use dae_emu::Emulator;

fn all_cases_pass(sm_count: usize) {
    let cases = kernel_cases(&Emulator::new(sm_count), false).expect("suite runs");
    for c in &cases {
        println!(
            "{:<44} {:<5} {:>14} {:>10.2e} {:>8.1e} {}",
            c.kernel, c.precision, c.shape, c.rel_error, c.tolerance, c.deterministic
        );
    }
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed()).collect();
    assert!(
        failed.is_empty(),
        "{sm_count} SMs: {} failed: {failed:#?}",
        failed.len()
    );
}

/// An H100's launch plans: at these shapes nearly every product splits, and
/// each split is a single 32-wide k-tile.
#[test]
fn every_kernel_case_passes_with_132_sms() {
    all_cases_pass(132);
}

/// Two SMs: almost nothing splits, so the GEMMs loop over many k-tiles
/// through their double-buffered shared memory (a missing barrier there
/// changes the bits between the two runs of a case, whose thread order the
/// emulator reverses).
#[test]
fn every_kernel_case_passes_with_2_sms() {
    all_cases_pass(2);
}
