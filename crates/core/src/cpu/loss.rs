//! Fused sigmoid + binary cross-entropy from the logits.

use super::fastmath::{exp_nonpositive, ln_1p_unit};
use super::simd::simd_dispatch;
use rayon::prelude::*;

const ELEMS_PER_CHUNK: usize = 16 * 1024;
/// Independent partial sums per block: lets the loop vectorise without
/// reassociating floats, so the result does not depend on the SIMD width.
const LANES: usize = 16;

#[inline(always)]
fn element(z: f32, t: f32, grad_scale: f32) -> (f32, f32) {
    let e = exp_nonpositive(-z.abs());
    let loss = z.max(0.0) - z * t + ln_1p_unit(e);
    // sigmoid from the same e^−|z|: no overflow for any z.
    let r = 1.0 / (1.0 + e);
    let s = if z >= 0.0 { r } else { e * r };
    (loss, (s - t) * grad_scale)
}

#[inline(always)]
fn chunk_body(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let mut zc = z.chunks_exact(LANES);
    let mut tc = t.chunks_exact(LANES);
    let mut dc = dz.chunks_exact_mut(LANES);
    for ((z, t), d) in (&mut zc).zip(&mut tc).zip(&mut dc) {
        for j in 0..LANES {
            let (l, g) = element(z[j], t[j], grad_scale);
            acc[j] += l;
            d[j] = g;
        }
    }
    let (zr, tr, dr) = (zc.remainder(), tc.remainder(), dc.into_remainder());
    for j in 0..zr.len() {
        let (l, g) = element(zr[j], tr[j], grad_scale);
        acc[j] += l;
        dr[j] = g;
    }
    acc.iter().map(|&a| a as f64).sum()
}

simd_dispatch!(fn chunk(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 => chunk_body);

/// Writes dz = (sigmoid(z) − t)·grad_scale and returns Σ bce(sigmoid(z), t),
/// computed stably as max(z,0) − z·t + ln(1 + e^−|z|). Chunk sums in f64,
/// added in chunk order: the same bits on any thread count.
pub fn bce_logits(z: &[f32], t: &[f32], dz: &mut [f32], grad_scale: f32) -> f64 {
    assert!(z.len() == t.len() && dz.len() >= z.len(), "length mismatch");
    if z.len() <= ELEMS_PER_CHUNK {
        return chunk(z, t, &mut dz[..z.len()], grad_scale);
    }
    let partials: Vec<f64> = z
        .par_chunks(ELEMS_PER_CHUNK)
        .zip(t.par_chunks(ELEMS_PER_CHUNK))
        .zip(dz[..z.len()].par_chunks_mut(ELEMS_PER_CHUNK))
        .map(|((z, t), dz)| chunk(z, t, dz, grad_scale))
        .collect();
    partials.iter().sum()
}

/// The fixed chunks `bce_logits` sums a loss of `len` elements in.
pub fn bce_chunk_count(len: usize) -> usize {
    len.div_ceil(ELEMS_PER_CHUNK)
}

/// Chunks `chunks` of `bce_logits` (gradient written, each chunk's sum in
/// `sums[c − chunks.start]`): one thread's share. Summing every chunk's sum
/// in chunk order gives `bce_logits`'s bits.
pub fn bce_chunks(
    z: &[f32],
    t: &[f32],
    dz: &mut [f32],
    grad_scale: f32,
    chunks: std::ops::Range<usize>,
    sums: &mut [f64],
) {
    let len = z.len();
    for (c, sum) in chunks.zip(sums) {
        let r = c * ELEMS_PER_CHUNK..((c + 1) * ELEMS_PER_CHUNK).min(len);
        *sum = chunk(&z[r.clone()], &t[r.clone()], &mut dz[r], grad_scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::random;
    use crate::reference::{self, relative_error};

    #[test]
    fn loss_and_gradient_match_reference() {
        for (tag, len) in [1usize, 7, 1000, 16 * 1024 + 3, 200_704]
            .into_iter()
            .enumerate()
        {
            let z: Vec<f32> = random(len, 300 + tag as u64)
                .iter()
                .map(|v| v * 12.0)
                .collect();
            let t: Vec<f32> = random(len, 350 + tag as u64)
                .iter()
                .map(|v| v.abs())
                .collect();
            let scale = 1.0 / len as f32;
            let mut dz = vec![f32::NAN; len];
            let loss = bce_logits(&z, &t, &mut dz, scale);
            let (rl, rg) = reference::bce_logits(&z, &t, scale as f64);
            assert!((loss - rl).abs() / rl.abs() < 1e-5, "loss {len}");
            assert!(relative_error(&dz, &rg) < 1e-5, "grad {len}");
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
