//! The kernel regression suite of `dae check`, run on the emulator.
use dae_core::cuda::check::kernel_cases;
use dae_emu::Emulator;

#[test]
fn every_kernel_case_passes_on_the_emulator() {
    let cases = kernel_cases(&Emulator::new(132), false).expect("suite runs");
    for c in &cases {
        println!(
            "{:<40} {:<5} {:>14} {:>10.2e} {:>8.1e} {}",
            c.kernel, c.precision, c.shape, c.rel_error, c.tolerance, c.deterministic
        );
    }
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed()).collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
}
