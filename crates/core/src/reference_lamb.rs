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

/// The relative bounds of p, m and v: each element's error is at most
/// `REL[k]` times its magnitude from [`lamb_bounds`].
pub const REL: [f64; 3] = [U32, 3.0 * U32, 3.0 * U32];

/// The reference (p, m, v) of one step and each element's magnitude, so
/// that |out − want| ≤ REL·magnitude:
/// p: |p_ref| + 24·lr·r·(|â| + wd·|w|), â = m̂/(√v̂+ε): u within ~10 ulp of
/// its terms (m, v 3 each, the corrections, sqrt, sum, quotient, decay
/// term), r within ~4 ulp (the sums in another order, two square roots,
/// the quotient), lr·r and its product with u one rounding each, then one
/// rounding of p. m and v: their terms' magnitudes (3 roundings). Elements
/// outside every tensor have magnitude 0: they must come back unchanged.
pub fn lamb_bounds(
    inp: &[Vec<f32>; 4],
    t: u64,
    cfg: &AdamConfig,
    tensors: &[LambTensor],
) -> ([Vec<f64>; 3], [Vec<f64>; 3]) {
    let [p0, g, m0, v0] = inp;
    let (rp, rm, rv, ratios) = lamb(p0, g, m0, v0, t, cfg, tensors);
    let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
    let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
    let n = p0.len();
    let mut owner = vec![None; n];
    for (k, tn) in tensors.iter().enumerate() {
        owner[tn.offset..tn.offset + tn.len].fill(Some(k));
    }
    let (mut p_mag, mut m_mag, mut v_mag) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let g = g[i] as f64;
        m_mag[i] = b1 * (m0[i] as f64).abs() + (1.0 - b1) * g.abs();
        v_mag[i] = b2 * v0[i] as f64 + (1.0 - b2) * g * g;
        if let Some(k) = owner[i] {
            let wd = if tensors[k].decay {
                cfg.weight_decay as f64
            } else {
                0.0
            };
            let a = (m_mag[i] / c1) / ((rv[i] / c2).sqrt() + eps);
            p_mag[i] =
                rp[i].abs() + 24.0 * cfg.lr as f64 * ratios[k] * (a + wd * (p0[i] as f64).abs());
        }
    }
    ([rp, rm, rv], [p_mag, m_mag, v_mag])
}

/// Every element of (p, m, v) within its bound ([`lamb_bounds`]). Ok: the
/// largest error / bound of the parameters (how tight the bound is); Err:
/// the first element past its bound (NaN fails).
pub fn check_lamb(
    out: [&[f32]; 3],
    inp: &[Vec<f32>; 4],
    t: u64,
    cfg: &AdamConfig,
    tensors: &[LambTensor],
) -> Result<f64, String> {
    let (want, mag) = lamb_bounds(inp, t, cfg, tensors);
    let mut owner = vec![None; inp[0].len()];
    for (k, tn) in tensors.iter().enumerate() {
        owner[tn.offset..tn.offset + tn.len].fill(Some(k));
    }
    let mut worst = 0.0f64;
    for i in 0..inp[0].len() {
        for (k, what) in ["p", "m", "v"].into_iter().enumerate() {
            let (got, want, bound) = (out[k][i], want[k][i], REL[k] * mag[k][i]);
            let err = (got as f64 - want).abs();
            if k == 0 && bound > 0.0 {
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
