//! LAMB over the flat parameter buffer (You et al., ICLR 2020), one trust
//! ratio per tensor (crate::lamb). The elementwise arithmetic (m, v, the
//! update u) is kernels/lamb.cu's, operation for operation, so it matches
//! the GPU bit for bit; the norms are summed in f64 chunk by chunk (each
//! chunk in element order, the chunks in order: independent of the thread
//! count), a different fixed order from the GPU's, so the trust ratio may
//! differ from the GPU's in its last bit.

use super::simd::simd_dispatch;
use crate::ops::lamb::{check_tensors, LambTensor};
use crate::AdamConfig;
use crate::{fail, Result};
use rayon::prelude::*;

const ELEMS_PER_CHUNK: usize = 16 * 1024;

/// (1/(1−β1^t), 1/(1−β2^t)) rounded to f32: the bias corrections, computed
/// in f64 with powi as kernels/lamb.cu computes them.
pub fn lamb_bias_corrections(cfg: &AdamConfig, t: u64) -> (f32, f32) {
    let t = t as i32;
    let c1 = 1.0 - (cfg.beta1 as f64).powi(t);
    let c2 = 1.0 - (cfg.beta2 as f64).powi(t);
    ((1.0 / c1) as f32, (1.0 / c2) as f32)
}

#[derive(Clone, Copy)]
struct Coefficients {
    b1: f32,
    b2: f32,
    eps: f32,
    ic1: f32,
    ic2: f32,
    /// The tensor's weight decay (0: none).
    wd: f32,
}

/// m, v and the update u (into `g`) of one chunk; returns (Σw², Σu²).
#[inline(always)]
fn moments_body(
    w: &[f32],
    g: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    k: Coefficients,
) -> (f64, f64) {
    let (mut ws, mut us) = (0.0f64, 0.0f64);
    for i in 0..w.len().min(g.len()).min(m.len()).min(v.len()) {
        let gi = g[i];
        m[i] = k.b1 * m[i] + (1.0 - k.b1) * gi;
        v[i] = k.b2 * v[i] + (1.0 - k.b2) * gi * gi;
        let mut u = m[i] * k.ic1 / ((v[i] * k.ic2).sqrt() + k.eps);
        if k.wd != 0.0 {
            u += k.wd * w[i];
        }
        g[i] = u;
        ws += w[i] as f64 * w[i] as f64;
        us += u as f64 * u as f64;
    }
    (ws, us)
}

simd_dispatch!(
    fn moments(w: &[f32], g: &mut [f32], m: &mut [f32], v: &mut [f32], k: Coefficients) -> (f64, f64) => moments_body
);

#[inline(always)]
fn apply_body(w: &mut [f32], u: &[f32], scale: f32) {
    for (w, &u) in w.iter_mut().zip(u) {
        *w -= scale * u;
    }
}

simd_dispatch!(
    fn apply(w: &mut [f32], u: &[f32], scale: f32) => apply_body
);

/// The step's scale lr·r for norms² `w2`, `u2` (r = 1 when either is 0).
pub(crate) fn trust_scale(lr: f32, w2: f64, u2: f64) -> f32 {
    let r = if w2 > 0.0 && u2 > 0.0 {
        w2.sqrt() / u2.sqrt()
    } else {
        1.0
    };
    (lr as f64 * r) as f32
}

/// One LAMB step at 1-based step `t` with learning rate `cfg.lr` (this
/// step's, from the schedule), in place on params, m and v over `tensors`;
/// `grads` is overwritten with the update u, as on the GPU. Elements outside
/// every tensor are left alone.
pub fn lamb_step(
    params: &mut [f32],
    grads: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u64,
    cfg: &AdamConfig,
    tensors: &[LambTensor],
) -> Result<()> {
    let n = params.len();
    if grads.len() != n || m.len() != n || v.len() != n {
        fail!(
            Input,
            "LAMB: params, grads, m and v differ in length ({n}, {}, {}, {})",
            grads.len(),
            m.len(),
            v.len()
        );
    }
    check_tensors(tensors, n)?;
    let (ic1, ic2) = lamb_bias_corrections(cfg, t);
    for tensor in tensors {
        let range = tensor.offset..tensor.offset + tensor.len;
        let k = Coefficients {
            b1: cfg.beta1,
            b2: cfg.beta2,
            eps: cfg.eps,
            ic1,
            ic2,
            wd: if tensor.decay { cfg.weight_decay } else { 0.0 },
        };
        let sums: Vec<(f64, f64)> = params[range.clone()]
            .par_chunks(ELEMS_PER_CHUNK)
            .zip(grads[range.clone()].par_chunks_mut(ELEMS_PER_CHUNK))
            .zip(m[range.clone()].par_chunks_mut(ELEMS_PER_CHUNK))
            .zip(v[range.clone()].par_chunks_mut(ELEMS_PER_CHUNK))
            .map(|(((w, g), m), v)| moments(w, g, m, v, k))
            .collect();
        let (w2, u2) = sums
            .iter()
            .fold((0.0, 0.0), |(a, b), &(w, u)| (a + w, b + u));
        let scale = trust_scale(cfg.lr, w2, u2);
        params[range.clone()]
            .par_chunks_mut(ELEMS_PER_CHUNK)
            .zip(grads[range].par_chunks(ELEMS_PER_CHUNK))
            .for_each(|(w, u)| apply(w, u, scale));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference_lamb;
    use crate::rng::{Purpose, Rng};

    fn tensor(offset: usize, len: usize, decay: bool) -> LambTensor {
        LambTensor { offset, len, decay }
    }

    /// Tensors of 1, 3, 1000 and 4097 elements (and a gap), one all zero
    /// (‖w‖ = 0), one with zero gradients and moments and no decay (‖u‖ = 0),
    /// one past the CPU's chunk size.
    fn layout() -> (Vec<LambTensor>, usize) {
        let lens = [
            (1, true),
            (3, false),
            (1000, true),
            (4097, true),
            (64, true),
            (50, false),
            (40_000, true),
        ];
        let mut tensors = Vec::new();
        let mut at = 0;
        for (i, &(len, decay)) in lens.iter().enumerate() {
            at += i % 2; // a gap before every other tensor
            tensors.push(tensor(at, len, decay));
            at += len;
        }
        (tensors, at + 1)
    }

    /// Fresh inputs for `layout`: tensor 4 has w = 0, tensor 5 has g = m = 0.
    fn inputs(seed: u64, tensors: &[LambTensor], n: usize) -> [Vec<f32>; 4] {
        let mut rng = Rng::new(seed, Purpose::Test, 0x1a3b);
        let mut draw = |scale: f32, square: bool| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    let x = rng.uniform_in(-1.0, 1.0);
                    if square {
                        x * x * scale
                    } else {
                        x * scale
                    }
                })
                .collect()
        };
        let (mut p, mut g, mut m, v) = (
            draw(1.0, false),
            draw(1e-2, false),
            draw(1e-3, false),
            draw(1e-5, true),
        );
        let (zw, zu) = (tensors[4], tensors[5]);
        p[zw.offset..zw.offset + zw.len].fill(0.0);
        g[zu.offset..zu.offset + zu.len].fill(0.0);
        m[zu.offset..zu.offset + zu.len].fill(0.0);
        [p, g, m, v]
    }

    #[test]
    fn steps_match_the_f64_reference() {
        let (tensors, n) = layout();
        for (seed, t, wd) in [(1u64, 1u64, 0.01f32), (2, 7, 0.0), (3, 1000, 0.1)] {
            let cfg = AdamConfig {
                lr: 2e-3,
                eps: 1e-6,
                weight_decay: wd,
                ..AdamConfig::default()
            };
            let inp = inputs(seed, &tensors, n);
            let [mut p, mut g, mut m, mut v] = inp.clone();
            lamb_step(&mut p, &mut g, &mut m, &mut v, t, &cfg, &tensors).unwrap();
            let worst = reference_lamb::check_lamb([&p, &m, &v], &inp, t, &cfg, &tensors)
                .unwrap_or_else(|e| panic!("seed {seed} t {t} wd {wd}: {e}"));
            println!("seed {seed} t {t} wd {wd}: worst p error / bound {worst:.3}");
            // u = 0 (zero gradients and moments, no decay): r = 1, w unchanged.
            let z = tensors[5];
            assert_eq!(
                p[z.offset..z.offset + z.len],
                inp[0][z.offset..z.offset + z.len]
            );
        }
    }

    /// The bound is tight enough to see a wrong trust ratio (sqrt(W/U) of
    /// the first tensor's squares swapped: r⁻¹) and a skipped bias correction.
    #[test]
    fn the_reference_check_catches_mistakes() {
        let (tensors, n) = layout();
        let cfg = AdamConfig {
            weight_decay: 0.01,
            ..AdamConfig::default()
        };
        let inp = inputs(9, &tensors, n);
        let [mut p, mut g, mut m, mut v] = inp.clone();
        lamb_step(&mut p, &mut g, &mut m, &mut v, 3, &cfg, &tensors).unwrap();
        // Step 3 checked as step 4: other bias corrections.
        assert!(reference_lamb::check_lamb([&p, &m, &v], &inp, 4, &cfg, &tensors).is_err());
        // One element's update doubled.
        let t = tensors[3];
        let mut bad = p.clone();
        let i = t.offset + 17;
        bad[i] -= inp[0][i] - p[i];
        assert!(reference_lamb::check_lamb([&bad, &m, &v], &inp, 3, &cfg, &tensors).is_err());
        // NaN (an unwritten element) fails.
        bad[i] = f32::NAN;
        assert!(reference_lamb::check_lamb([&bad, &m, &v], &inp, 3, &cfg, &tensors).is_err());
    }

    #[test]
    fn bad_tables_and_lengths_are_refused() {
        let mut b = vec![0.0f32; 10];
        let (mut g, mut m, mut v) = (vec![0.0f32; 10], vec![0.0f32; 10], vec![0.0f32; 9]);
        let cfg = AdamConfig::default();
        let err = lamb_step(
            &mut b,
            &mut g,
            &mut m,
            &mut v,
            1,
            &cfg,
            &[tensor(0, 10, true)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("differ in length"), "{err}");
        let mut v = vec![0.0f32; 10];
        let err = lamb_step(
            &mut b,
            &mut g,
            &mut m,
            &mut v,
            1,
            &cfg,
            &[tensor(5, 6, true)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ends past"), "{err}");
    }
}
