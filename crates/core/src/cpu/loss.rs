//! Fused sigmoid + binary cross-entropy from the logits.

use super::fastmath::exp_nonpositive;
use super::simd::simd_dispatch;

const ELEMS_PER_CHUNK: usize = 16 * 1024;
/// Independent partial sums per block: lets the loop vectorise without
/// reassociating floats, so the result does not depend on the SIMD width.
const LANES: usize = 16;
/// Blocks between renormalisations of the lanes' products: each factor is
/// in [1, 2], so a product stays below 2^(RENORM + 1), far inside f32.
const RENORM: usize = 32;

/// The loss of one element is max(z,0) − z·t + ln(1 + e^−|z|). Returns its
/// linear part, the 1 + e^−|z| whose logarithm the caller sums as the log
/// of a product (one multiply an element instead of a log), and the
/// gradient.
#[inline(always)]
fn element(z: f32, t: f32, grad_scale: f32) -> (f32, f32, f32) {
    let e = exp_nonpositive(-z.abs());
    let one_plus_e = 1.0 + e;
    // sigmoid from the same e^−|z|: no overflow for any z.
    let r = 1.0 / one_plus_e;
    let s = if z >= 0.0 { r } else { e * r };
    (z.mul_add(-t, z.max(0.0)), one_plus_e, (s - t) * grad_scale)
}

/// Per-lane sums of the linear parts and products of the 1 + e^−|z|, the
/// products kept in [1, 2) with their exponents counted apart.
struct Lanes {
    linear: [f32; LANES],
    product: [f32; LANES],
    exponent: [i32; LANES],
}

impl Lanes {
    #[inline(always)]
    fn new() -> Self {
        Lanes {
            linear: [0.0; LANES],
            product: [1.0; LANES],
            exponent: [0; LANES],
        }
    }

    #[inline(always)]
    fn add(&mut self, j: usize, linear: f32, one_plus_e: f32) {
        self.linear[j] += linear;
        self.product[j] *= one_plus_e;
    }

    /// Moves each product's exponent into `exponent`: exact, since a
    /// product is a normal number ≥ 1.
    #[inline(always)]
    fn renormalise(&mut self) {
        for j in 0..LANES {
            let bits = self.product[j].to_bits();
            self.exponent[j] += (bits >> 23) as i32 - 127;
            self.product[j] = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        }
    }

    /// Σ linear + ln Π (1 + e^−|z|), lanes in order, in f64.
    fn total(&self) -> f64 {
        let linear: f64 = self.linear.iter().map(|&a| a as f64).sum();
        let mut mantissa = 1.0f64;
        let mut exponent = 0i64;
        for j in 0..LANES {
            // Each factor is below 2^(RENORM + 1): 16 of them fit in f64.
            mantissa *= self.product[j] as f64;
            exponent += self.exponent[j] as i64;
        }
        linear + mantissa.ln() + exponent as f64 * std::f64::consts::LN_2
    }
}

#[inline(always)]
fn chunk_body(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 {
    let mut lanes = Lanes::new();
    let mut zc = z.chunks_exact(LANES);
    let mut tc = t.chunks_exact(LANES);
    let mut dc = dz.chunks_exact_mut(LANES);
    for (i, ((z, t), d)) in (&mut zc).zip(&mut tc).zip(&mut dc).enumerate() {
        for j in 0..LANES {
            let (linear, one_plus_e, g) = element(z[j], t[j], grad_scale);
            lanes.add(j, linear, one_plus_e);
            d[j] = g;
        }
        if i % RENORM == RENORM - 1 {
            lanes.renormalise();
        }
    }
    let (zr, tr, dr) = (zc.remainder(), tc.remainder(), dc.into_remainder());
    for j in 0..zr.len() {
        let (linear, one_plus_e, g) = element(zr[j], tr[j], grad_scale);
        lanes.add(j, linear, one_plus_e);
        dr[j] = g;
    }
    lanes.total()
}

simd_dispatch!(fn chunk(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 => chunk_body);

/// Writes dz = (sigmoid(z) − t)·grad_scale and returns Σ bce(sigmoid(z), t),
/// computed stably as Σ (max(z,0) − z·t) + ln Π (1 + e^−|z|). Each 1 + e^−|z|
/// is rounded to f32 (an absolute error below 6e-8 in its element's loss)
/// and each product step adds a relative error below 6e-8 to its lane's
/// product (at most 1,024 steps a lane per chunk). Fixed chunks summed in
/// f64, in chunk order. Serial: a batch's loss is shared out by rows
/// (`bce_rows`).
pub fn bce_logits(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 {
    assert!(z.len() == t.len() && dz.len() >= z.len(), "length mismatch");
    z.chunks(ELEMS_PER_CHUNK)
        .zip(t.chunks(ELEMS_PER_CHUNK))
        .zip(dz[..z.len()].chunks_mut(ELEMS_PER_CHUNK))
        .map(|((z, t), dz)| chunk(z, t, dz, grad_scale))
        .sum()
}

/// `bce_logits` of each row of z, t [rows, row_len] into `sums[row]`, its
/// gradient into dz: the loss of a batch is the sum of its rows' in row
/// order, the same bits however the rows are shared out.
pub fn bce_rows(
    z: &[f32],
    t: &[f32],
    dz: &mut [f32],
    grad_scale: f32,
    row_len: usize,
    sums: &mut [f64],
) {
    let len = sums.len() * row_len;
    assert!(
        z.len() >= len && t.len() >= len && dz.len() >= len,
        "length mismatch"
    );
    if row_len == 0 {
        return sums.fill(0.0);
    }
    for (((z, t), dz), sum) in z[..len]
        .chunks_exact(row_len)
        .zip(t.chunks_exact(row_len))
        .zip(dz.chunks_exact_mut(row_len))
        .zip(sums)
    {
        *sum = bce_logits(z, t, dz, grad_scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::random;
    use crate::reference::{self, relative_error};

    /// Logits in [-12, 12) and targets in [0, 1], from seeds `z_seed` and
    /// `t_seed`.
    fn logits_and_targets(len: usize, z_seed: u64, t_seed: u64) -> (Vec<f32>, Vec<f32>) {
        let z = random(len, z_seed).iter().map(|v| v * 12.0).collect();
        let t = random(len, t_seed).iter().map(|v| v.abs()).collect();
        (z, t)
    }

    #[test]
    fn loss_and_gradient_match_reference() {
        for (tag, len) in [1usize, 7, 1000, 16 * 1024 + 3, 200_704]
            .into_iter()
            .enumerate()
        {
            let (z, t) = logits_and_targets(len, 300 + tag as u64, 350 + tag as u64);
            let scale = 1.0 / len as f32;
            let mut dz = vec![f32::NAN; len];
            let loss = bce_logits(&z, &t, &mut dz, scale);
            let (rl, rg) = reference::bce_logits(&z, &t, scale as f64);
            assert!((loss - rl).abs() / rl.abs() < 1e-6, "loss {len}");
            assert!(relative_error(&dz, &rg) < 1e-6, "grad {len}");
        }
    }

    /// A batch's loss by rows: each row's sum is `bce_logits` of the row
    /// (so an evaluation's per-row losses and a step's agree), the rows'
    /// gradients are the whole's, and widths that are no multiple of the
    /// lanes or of the chunk are covered.
    #[test]
    fn row_sums_are_each_rows_loss() {
        for (tag, (rows, width)) in [(1usize, 1usize), (3, 17), (5, 784), (2, 16 * 1024 + 5)]
            .into_iter()
            .enumerate()
        {
            let len = rows * width;
            let (z, t) = logits_and_targets(len, 700 + tag as u64, 750 + tag as u64);
            let scale = 1.0 / len as f32;
            let mut dz = vec![f32::NAN; len];
            let mut sums = vec![f64::NAN; rows];
            bce_rows(&z, &t, &mut dz, scale, width, &mut sums);
            let (rl, rg) = reference::bce_logits(&z, &t, scale as f64);
            let total: f64 = sums.iter().sum();
            assert!(
                (total - rl).abs() / rl.abs() < 1e-5,
                "{rows}x{width} (tag {tag})"
            );
            assert!(
                relative_error(&dz, &rg) < 1e-5,
                "{rows}x{width} grad (tag {tag})"
            );
            for (r, sum) in sums.iter().enumerate() {
                let span = r * width..(r + 1) * width;
                let mut row_dz = vec![f32::NAN; width];
                let one = bce_logits(&z[span.clone()], &t[span.clone()], &mut row_dz, scale);
                assert_eq!(one.to_bits(), sum.to_bits(), "row {r} of {rows}x{width}");
                let same = row_dz
                    .iter()
                    .zip(&dz[span])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "row {r} gradient of {rows}x{width}");
            }
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let z = [-1e4f32, -90.0, 0.0, 90.0, 1e4];
        let t = [0.0f32, 1.0, 0.5, 0.0, 1.0];
        let mut dz = [0.0f32; 5];
        let loss = bce_logits(&z, &t, &mut dz, 1.0);
        assert!(loss.is_finite() && dz.iter().all(|d| d.is_finite()));
        assert!((loss - (90.0 + 2f64.ln() + 90.0)).abs() < 1e-3, "{loss}");
    }
}
