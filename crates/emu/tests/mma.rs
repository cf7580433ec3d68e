//! The two models of the tensor cores' accumulation (`MmaModel`), on inputs
//! where they must differ: products too small to survive alignment to the
//! accumulator's exponent.

use dae_core::ops::{Arg, Launch};
use dae_core::Buffer;
use dae_emu::{Emulator, MmaModel};

fn mma(model: MmaModel, c: f32, ab: f32, bf16: bool) -> Vec<f32> {
    let emu = Emulator::new(132).with_mma(model);
    let d = Buffer::<_, f32>::zeros(&emu, 128).unwrap();
    let l = Launch {
        kernel: "emu_test_mma",
        grid: (1, 1, 1),
        block: (32, 1, 1),
        args: vec![
            Arg::Ptr(d.ptr()),
            Arg::F32(c),
            Arg::F32(ab),
            Arg::I32(i32::from(bf16)),
        ],
    };
    emu.launch(&l).unwrap();
    d.download(&emu, 128).unwrap()
}

#[test]
fn small_products_vanish_in_the_truncating_model_only() {
    let tiny = 2f32.powi(-12); // each product 2⁻²⁴: half an ulp of 1
    for (bf16, k) in [(false, 8), (true, 16)] {
        // Exact: 1 + k·2⁻²⁴, representable in fp32, rounded once.
        let exact = 1.0 + k as f32 * 2f32.powi(-24);
        assert!(mma(MmaModel::Exact, 1.0, tiny, bf16)
            .iter()
            .all(|&v| v == exact));
        // Truncating: each product lies below the 24 bits kept under the
        // accumulator's leading bit, so every block adds nothing.
        assert!(mma(MmaModel::Truncate, 1.0, tiny, bf16)
            .iter()
            .all(|&v| v == 1.0));
    }
}

#[test]
fn the_truncating_model_rounds_toward_zero() {
    // tf32, c = −1 and every product p = (1.5·2⁻¹²)² = 1.125·2⁻²³.
    let ab = 1.5 * 2f32.powi(-12);
    let p = ab as f64 * ab as f64;
    // Exact: −1 + 8p = −1 + 9·2⁻²³, representable.
    let exact = (-1.0 + 8.0 * p) as f32;
    assert!(mma(MmaModel::Exact, -1.0, ab, false)
        .iter()
        .all(|&v| v == exact));
    // Truncating, two blocks of 4: aligned to |c| (2⁻²³ steps, then 2⁻²⁴
    // once |c| < 1), each product keeps only 2⁻²³ of its 1.125·2⁻²³.
    let truncated = (-1.0 + 8.0 * 2f64.powi(-23)) as f32;
    let got = mma(MmaModel::Truncate, -1.0, ab, false);
    assert!(
        got.iter().all(|&v| v == truncated),
        "{:?} vs {truncated}",
        got[0]
    );
    assert_ne!(exact, truncated);
}
