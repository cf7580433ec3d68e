//! The float64 reference of LAMB (You et al., ICLR 2020, Algorithm 2 with
//! φ = identity): slow and obviously right.

use crate::lamb::LambTensor;
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
