//! The float64 reference of LAMB (You et al., ICLR 2020, Algorithm 2 with
//! φ = identity): slow and obviously right.

use crate::ops::lamb::LambTensor;
use crate::AdamConfig;

/// One LAMB step at 1-based step `t` with learning rate `cfg.lr`, over the
/// given tensors of the flat buffers; returns (params, m, v, trust ratio per
/// tensor). Elements outside every tensor come back unchanged.
pub fn lamb(
    params: &[f32],
    grads: &[f32],
    m: &[f32],
    v: &[f32],
    t: u64,
    cfg: &AdamConfig,
    tensors: &[LambTensor],
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
    let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
    let widen = |x: &[f32]| x.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (mut p_out, mut m_out, mut v_out) = (widen(params), widen(m), widen(v));
    let mut ratios = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let range = tensor.offset..tensor.offset + tensor.len;
        let wd = if tensor.decay {
            cfg.weight_decay as f64
        } else {
            0.0
        };
        let mut update = Vec::with_capacity(tensor.len);
        for i in range.clone() {
            let g = grads[i] as f64;
            m_out[i] = b1 * m[i] as f64 + (1.0 - b1) * g;
            v_out[i] = b2 * v[i] as f64 + (1.0 - b2) * g * g;
            let adam = (m_out[i] / c1) / ((v_out[i] / c2).sqrt() + eps);
            update.push(adam + wd * params[i] as f64);
        }
        let w_norm = range
            .clone()
            .map(|i| (params[i] as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let u_norm = update.iter().map(|u| u * u).sum::<f64>().sqrt();
        let r = if w_norm > 0.0 && u_norm > 0.0 {
            w_norm / u_norm
        } else {
            1.0
        };
        for (i, u) in range.zip(&update) {
            p_out[i] = params[i] as f64 - cfg.lr as f64 * r * u;
        }
        ratios.push(r);
    }
    (p_out, m_out, v_out, ratios)
}

/// f32 unit roundoff.
const U32: f64 = f32::EPSILON as f64 / 2.0;

/// Per element: |p − p_ref| ≤ u32·|p_ref| + 24·u32·lr·r·(|â| + wd·|w|),
/// â = m̂/(√v̂+ε): u within ~10 ulp of its terms (m, v 3 each, the
/// corrections, sqrt, sum, quotient, decay term), r within ~4 ulp
/// (the sums in another order, two square roots, the quotient), lr·r
/// and its product with u one rounding each, then one rounding of p.
/// m and v: 3·u32 of their terms. Elements outside every tensor must come
/// back unchanged. Ok: the largest error / bound of the parameters (how
/// tight the bound is); Err: the first element past its bound (NaN fails).
pub fn check_lamb(
    out: [&[f32]; 3],
    inp: &[Vec<f32>; 4],
    t: u64,
    cfg: &AdamConfig,
    tensors: &[LambTensor],
) -> Result<f64, String> {
    let [p0, g, m0, v0] = inp;
    let (rp, rm, rv, ratios) = lamb(p0, g, m0, v0, t, cfg, tensors);
    let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
    let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
    let [p, m, v] = out;
    let mut worst = 0.0f64;
    let mut owner = vec![None; p0.len()];
    for (k, tn) in tensors.iter().enumerate() {
        owner[tn.offset..tn.offset + tn.len].fill(Some(k));
    }
    for i in 0..p0.len() {
        let g = g[i] as f64;
        let m_mag = b1 * (m0[i] as f64).abs() + (1.0 - b1) * g.abs();
        let v_mag = b2 * v0[i] as f64 + (1.0 - b2) * g * g;
        let p_bound = match owner[i] {
            None => 0.0,
            Some(k) => {
                let wd = if tensors[k].decay {
                    cfg.weight_decay as f64
                } else {
                    0.0
                };
                let a = (m_mag / c1) / ((rv[i] / c2).sqrt() + eps);
                U32 * rp[i].abs()
                    + 24.0 * U32 * cfg.lr as f64 * ratios[k] * (a + wd * (p0[i] as f64).abs())
            }
        };
        let checks = [
            ("p", p[i], rp[i], p_bound),
            ("m", m[i], rm[i], 3.0 * U32 * m_mag),
            ("v", v[i], rv[i], 3.0 * U32 * v_mag),
        ];
        for (what, got, want, bound) in checks {
            let err = (got as f64 - want).abs();
            if what == "p" && bound > 0.0 {
                worst = worst.max(err / bound);
            }
            if err.is_nan() || err > bound {
                return Err(format!(
                    "{what}[{i}] (tensor {:?}) = {got:e}, reference {want:e}: error {err:e} > bound {bound:e}",
                    owner[i]
                ));
            }
        }
    }
    Ok(worst)
}
