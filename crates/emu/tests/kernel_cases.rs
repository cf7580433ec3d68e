//! The kernel regression suite of `dae check`, run on the emulator, under
//! the suite's default seed or `DAE_CHECK_SEED` (the seed is printed, and
//! named in any failure, so a failing run can be repeated exactly).
use dae_core::check::{kernel_cases, Selection};
use dae_emu::{suite_seed, Emulator, MmaModel};

fn all_cases_pass(sm_count: usize) {
    let seed = suite_seed();
    let mma = MmaModel::from_env();
    println!("suite seed {seed} (DAE_CHECK_SEED), {sm_count} SMs, {mma:?} MMA (DAE_EMU_MMA)");
    let cases = kernel_cases(
        &Emulator::new(sm_count).with_mma(MmaModel::from_env()),
        seed,
        &Selection::default(),
        false,
    )
    .expect("suite runs");
    println!("{}", dae_core::check::CaseResult::header());
    for c in &cases {
        println!("{}", c.row());
        c.mismatch_lines()
            .iter()
            .for_each(|l| println!("      {l}"));
    }
    let failed: Vec<_> = cases.iter().filter(|c| c.failed()).collect();
    assert!(
        failed.is_empty(),
        "seed {seed}, {sm_count} SMs, {mma:?} MMA: {} failed (rerun: DAE_CHECK_SEED={seed}): {failed:#?}",
        failed.len()
    );
    assert!(cases.iter().filter(|c| c.passed()).count() > 300);
}

/// An H100's launch plans: at these shapes nearly every product splits, and
/// each split is a single 32-wide k-tile.
#[test]
fn every_kernel_case_passes_with_132_sms() {
    all_cases_pass(132);
}

/// Two SMs: almost nothing splits, so the GEMMs loop over many k-tiles
/// through their double-buffered shared memory (a missing barrier there is
/// a race the emulator's detector reports).
#[test]
fn every_kernel_case_passes_with_2_sms() {
    all_cases_pass(2);
}

/// A case run alone draws the same inputs as in its whole group (the
/// streams are named after the group, not drawn in suite order), and
/// another seed draws other inputs.
#[test]
fn a_case_alone_sees_the_same_inputs_as_in_the_suite() {
    use dae_core::check::parse_shape;
    use dae_core::Precision;
    let emu = Emulator::new(132).with_mma(MmaModel::from_env());
    let seed = suite_seed();
    let shape = Some(parse_shape("257x131x67").unwrap());
    let group = Selection {
        shape: shape.clone(),
        ..Selection::default()
    };
    let alone = Selection {
        case: Some("gemm_dx relu-mask".into()),
        precision: Some(Precision::Bf16),
        shape,
    };
    let verdict = |seed, sel: &Selection| {
        let cases = kernel_cases(&emu, seed, sel, false).unwrap();
        let c = cases
            .into_iter()
            .find(|c| c.key.name == "gemm_dx relu-mask" && c.key.precision == "bf16")
            .expect("selected");
        c.checked().unwrap().verdict.clone()
    };
    let (in_group, by_itself) = (verdict(seed, &group), verdict(seed, &alone));
    assert_eq!(in_group, by_itself, "seed {seed}");
    assert_eq!(kernel_cases(&emu, seed, &alone, false).unwrap().len(), 1);
    assert_ne!(
        verdict(seed + 1, &alone).max_abs_diff,
        by_itself.max_abs_diff
    );
}

/// The committed goldens are the emulator's own bits: a kernel change that
/// moves any bit of a deterministic case fails here until the goldens are
/// recorded again in the same change (`dae check --device emulator
/// --precision fp32 --case 'gemm_|bias_grad|adam' --quick --record-goldens
/// crates/core/goldens/emulator-sm132.safetensors`).
#[test]
fn the_committed_goldens_are_the_emulators_bits() {
    use dae_core::check::golden::GOLDEN_SM_COUNT;
    use dae_core::check::{kernel_cases_with, Goldens, Options, DEFAULT_SEED};
    use dae_core::Precision;
    let goldens = Goldens::embedded().unwrap();
    assert!(goldens.apply_to(GOLDEN_SM_COUNT, DEFAULT_SEED));
    assert!(goldens.len() >= 30, "{} goldens", goldens.len());
    let sel = Selection {
        case: Some("gemm_|bias_grad|adam".into()),
        precision: Some(Precision::Fp32),
        shape: None,
    };
    let opts = Options {
        goldens: Some(&goldens),
        ..Options::default()
    };
    let emu = Emulator::new(GOLDEN_SM_COUNT);
    let run = kernel_cases_with(&emu, DEFAULT_SEED, &sel, false, &opts).unwrap();
    let compared: Vec<_> = run.results.iter().filter(|c| c.golden.is_some()).collect();
    assert_eq!(compared.len(), goldens.len(), "every golden compared");
    let differ: Vec<String> = compared
        .iter()
        .filter(|c| c.differs_from_golden())
        .map(|c| format!("{}: {:?}", c.key.id(), c.golden))
        .collect();
    assert!(differ.is_empty(), "stale goldens: {differ:#?}");
}

/// For tools/race_mutants.py: the cases whose name DAE_EMU_CASE selects (a
/// substring or glob), in each precision DAE_EMU_PRECISIONS lists (comma-
/// separated; default all), with the plans of 2 and 132 SMs.
#[test]
#[ignore = "run by tools/race_mutants.py with DAE_EMU_CASE set"]
fn selected_cases_pass() {
    use dae_core::Precision;
    let seed = suite_seed();
    let case = std::env::var("DAE_EMU_CASE").expect("DAE_EMU_CASE");
    let precisions =
        std::env::var("DAE_EMU_PRECISIONS").unwrap_or_else(|_| "fp32,tf32,bf16".into());
    for name in precisions.split(',') {
        let precision = Precision::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap_or_else(|| panic!("DAE_EMU_PRECISIONS: no precision {name}"));
        for sm in [2, 132] {
            let sel = Selection {
                case: Some(case.clone()),
                precision: Some(precision),
                shape: None,
            };
            let cases = kernel_cases(
                &Emulator::new(sm).with_mma(MmaModel::from_env()),
                seed,
                &sel,
                false,
            )
            .unwrap_or_else(|e| panic!("seed {seed}, {sm} SMs, {name}: {e:#}"));
            assert!(
                !cases.is_empty(),
                "DAE_EMU_CASE={case} selects no {name} case"
            );
            let failed: Vec<_> = cases.iter().filter(|c| c.failed()).collect();
            assert!(failed.is_empty(), "seed {seed}, {sm} SMs: {failed:#?}");
            println!("seed {seed}, {sm} SMs, {name}: {} cases pass", cases.len());
        }
    }
}
