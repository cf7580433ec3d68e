//! Adam over the flat parameter buffer.

use super::simd::avx512_dispatch;
use crate::AdamConfig;
use rayon::prelude::*;

const ELEMS_PER_CHUNK: usize = 32 * 1024;

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

avx512_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn adam_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32) => adam_block_body
);

/// One Keras-3 Adam step at 1-based step `t`, in place on params, m and v.
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
    params
        .par_chunks_mut(ELEMS_PER_CHUNK)
        .zip(grads.par_chunks(ELEMS_PER_CHUNK))
        .zip(m.par_chunks_mut(ELEMS_PER_CHUNK))
        .zip(v.par_chunks_mut(ELEMS_PER_CHUNK))
        .for_each(|(((p, g), m), v)| adam_block(p, g, m, v, alpha, b1, b2, eps));
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
}
