//! Adam over the flat parameter buffer.

use super::simd::simd_dispatch;
use crate::AdamConfig;
use rayon::prelude::*;

/// Small enough that the chunks of the lab's 222,384 parameters split evenly over
/// a few threads (27 chunks: 7 would leave one of two threads a chunk idle).
const ELEMS_PER_CHUNK: usize = 8 * 1024;

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_block_body(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    for i in 0..p.len().min(g.len()).min(m.len()).min(v.len()) {
        let gi = g[i];
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] -= alpha * m[i] / (v[i].sqrt() + eps);
    }
}

simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn adam_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32) => adam_block_body
);

/// AdamW: the decoupled decay p −= (lr·wd)·p, then the Adam update, in
/// kernels/adam.cu's order. A loop of its own so that weight_decay = 0
/// runs `adam_block_body` untouched (p − 0·p is not p for p = −0 or ±∞).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adamw_block_body(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    lr_wd: f32,
) {
    for i in 0..p.len().min(g.len()).min(m.len()).min(v.len()) {
        let gi = g[i];
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] -= lr_wd * p[i];
        p[i] -= alpha * m[i] / (v[i].sqrt() + eps);
    }
}

simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn adamw_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32, lr_wd: f32) => adamw_block_body
);

/// One Keras-3 Adam step at 1-based step `t`, in place on params, m and v;
/// AdamW when `cfg.weight_decay` is not 0 (`cfg.lr` is this step's rate).
pub fn adam_step(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u64,
    cfg: &AdamConfig,
) {
    let alpha = cfg.alpha(t);
    let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
    let lr_wd = cfg.lr * cfg.weight_decay;
    params
        .par_chunks_mut(ELEMS_PER_CHUNK)
        .zip(grads.par_chunks(ELEMS_PER_CHUNK))
        .zip(m.par_chunks_mut(ELEMS_PER_CHUNK))
        .zip(v.par_chunks_mut(ELEMS_PER_CHUNK))
        .for_each(|(((p, g), m), v)| {
            if cfg.weight_decay == 0.0 {
                adam_block(p, g, m, v, alpha, b1, b2, eps)
            } else {
                adamw_block(p, g, m, v, alpha, b1, b2, eps, lr_wd)
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::random;
    use crate::reference::{self, relative_error};

    #[test]
    fn steps_match_reference() {
        let cfg = AdamConfig::default();
        for (tag, (len, t)) in [(1usize, 1u64), (1000, 2), (222_384, 7), (9_000, 10_000)]
            .into_iter()
            .enumerate()
        {
            let tag = 400 + 10 * tag as u64;
            let p0 = random(len, tag);
            let g: Vec<f32> = random(len, tag + 1).iter().map(|x| x * 1e-2).collect();
            let m0: Vec<f32> = random(len, tag + 2).iter().map(|x| x * 1e-3).collect();
            let v0: Vec<f32> = random(len, tag + 3).iter().map(|x| x * x * 1e-5).collect();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adam_step(&mut p, &g, &mut m, &mut v, t, &cfg);
            let (rp, rm, rv) = reference::adam(&p0, &g, &m0, &v0, t, &cfg);
            assert!(relative_error(&m, &rm) < 1e-6, "m {len}");
            assert!(relative_error(&v, &rv) < 1e-6, "v {len}");
            // Compare the update itself: the params dwarf it.
            let du: Vec<f32> = p.iter().zip(&p0).map(|(a, b)| a - b).collect();
            let rdu: Vec<f64> = rp.iter().zip(&p0).map(|(a, &b)| a - b as f64).collect();
            assert!(relative_error(&du, &rdu) < 1e-3, "update {len}");
        }
    }

    /// AdamW against the reference (decay and Adam step together), and
    /// weight_decay = 0 bit for bit the plain Adam loop (the pre-AdamW
    /// arithmetic, written out here) including −0 and ±∞ parameters.
    #[test]
    fn adamw_matches_reference_and_zero_decay_keeps_adam_bits() {
        let plain = AdamConfig::default();
        for (tag, (len, t, wd)) in [(1usize, 1u64, 0.01f32), (1000, 3, 0.1), (70_001, 50, 1e-4)]
            .into_iter()
            .enumerate()
        {
            let cfg = AdamConfig {
                lr: 3e-3,
                weight_decay: wd,
                ..plain
            };
            let tag = 600 + 10 * tag as u64;
            let p0 = random(len, tag);
            let g: Vec<f32> = random(len, tag + 1).iter().map(|x| x * 1e-2).collect();
            let m0: Vec<f32> = random(len, tag + 2).iter().map(|x| x * 1e-3).collect();
            let v0: Vec<f32> = random(len, tag + 3).iter().map(|x| x * x * 1e-5).collect();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adam_step(&mut p, &g, &mut m, &mut v, t, &cfg);
            let (rp, _, _) = reference::adam(&p0, &g, &m0, &v0, t, &cfg);
            let du: Vec<f32> = p.iter().zip(&p0).map(|(a, b)| a - b).collect();
            let rdu: Vec<f64> = rp.iter().zip(&p0).map(|(a, &b)| a - b as f64).collect();
            assert!(relative_error(&du, &rdu) < 1e-3, "adamw update {len}");
            // The decay is really there: without it the update differs.
            let (np, _, _) = reference::adam(&p0, &g, &m0, &v0, t, &plain_lr(&cfg));
            let ndu: Vec<f64> = np.iter().zip(&p0).map(|(a, &b)| a - b as f64).collect();
            assert!(
                relative_error(&du, &ndu) > 1e-2 * (wd as f64 / 0.1),
                "{len}"
            );

            let mut p0 = p0;
            if len > 2 {
                p0[0] = -0.0;
                p0[1] = f32::INFINITY;
                p0[2] = f32::NEG_INFINITY;
            }
            let zero = AdamConfig {
                weight_decay: 0.0,
                ..cfg
            };
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adam_step(&mut p, &g, &mut m, &mut v, t, &zero);
            let alpha = zero.alpha(t);
            let (b1, b2, eps) = (zero.beta1, zero.beta2, zero.eps);
            for i in 0..len {
                let mi = b1 * m0[i] + (1.0 - b1) * g[i];
                let vi = b2 * v0[i] + (1.0 - b2) * g[i] * g[i];
                let pi = p0[i] - alpha * mi / (vi.sqrt() + eps);
                assert_eq!(p[i].to_bits(), pi.to_bits(), "p[{i}] of {len}");
                assert_eq!(
                    (m[i].to_bits(), v[i].to_bits()),
                    (mi.to_bits(), vi.to_bits())
                );
            }
        }
    }

    fn plain_lr(cfg: &AdamConfig) -> AdamConfig {
        AdamConfig {
            weight_decay: 0.0,
            ..*cfg
        }
    }
}
