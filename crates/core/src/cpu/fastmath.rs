//! Branch-free exp and log1p for the loss's hot loop. libm's scalar calls
//! took a third of a CPU training step; these polynomial forms inline and
//! vectorise (16 lanes on AVX-512) at a few ulp of error, checked below
//! against float64 over their whole domains.

/// e^x for x ≤ 0 (x below −87 gives ≈1e-38 instead of a subnormal, which
/// changes a loss or sigmoid by less than 1e-37).
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    // x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two for exactness.
    // Round to nearest by the 1.5·2^23 trick: plain adds, so it vectorises
    // where f32::round would call libm.
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    // Minimax-quality Taylor to degree 7 on |r| ≤ 0.347: error < 1e-8.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^n by building the exponent bits (n ∈ [−126, 0]).
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// ln(1 + e) for e ∈ [0, 1], as 2·atanh(e / (2 + e)): accurate in relative
/// terms for tiny e as well.
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    // atanh(s)/s = Σ s^(2k)/(2k+1); s ≤ 1/3 so s² ≤ 1/9 and 8 terms reach 1e-8.
    let q = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0
                    + s2 * (1.0 / 9.0
                        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    2.0 * s * q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_f64() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -(i as f32) * 87.0 / 200_000.0;
            let r = (x as f64).exp();
            worst = worst.max((exp_nonpositive(x) as f64 - r).abs() / r);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e4) < 1e-37);
    }

    #[test]
    fn ln_1p_matches_f64() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let e = (i as f32 / 200_000.0).powi(3);
            let r = (e as f64).ln_1p();
            let got = ln_1p_unit(e) as f64;
            if r > 0.0 {
                worst = worst.max((got - r).abs() / r);
            } else {
                assert_eq!(got, 0.0);
            }
        }
        assert!(worst < 5e-7, "relative error {worst}");
    }
}
