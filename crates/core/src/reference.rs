//! Naive float64 references of every op. Slow and obviously right: the CPU
//! ops and the CUDA kernels are both checked against these.

use crate::{Activation, AdamConfig};

pub fn activate(z: f64, act: Activation) -> f64 {
    match act {
        Activation::Identity => z,
        Activation::Relu => z.max(0.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
    }
}

/// act(X·W + b) for X [m,k], W [k,n], b [n].
pub fn dense_forward(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
    act: Activation,
) -> Vec<f64> {
    let mut y = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = b.map_or(0.0, |b| b[j] as f64);
            for p in 0..k {
                acc += x[i * k + p] as f64 * w[p * n + j] as f64;
            }
            y[i * n + j] = activate(acc, act);
        }
    }
    y
}

/// dX = dY·Wᵀ for dY [m,n], W [k,n]; zeroed where `mask` [m,k] is not > 0.
pub fn dense_backward_input(
    dy: &[f32],
    w: &[f32],
    mask: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f64> {
    let mut dx = vec![0.0; m * k];
    for i in 0..m {
        for p in 0..k {
            if mask.is_some_and(|mask| mask[i * k + p] <= 0.0) {
                continue;
            }
            let mut acc = 0.0;
            for j in 0..n {
                acc += dy[i * n + j] as f64 * w[p * n + j] as f64;
            }
            dx[i * k + p] = acc;
        }
    }
    dx
}

/// dW = Xᵀ·dY for X [m,k], dY [m,n].
pub fn dense_backward_weight(x: &[f32], dy: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut dw = vec![0.0; k * n];
    for i in 0..m {
        for p in 0..k {
            let xv = x[i * k + p] as f64;
            for j in 0..n {
                dw[p * n + j] += xv * dy[i * n + j] as f64;
            }
        }
    }
    dw
}

/// Column sums of dY [m,n] (the bias gradient).
pub fn column_sums(dy: &[f32], m: usize, n: usize) -> Vec<f64> {
    let mut s = vec![0.0; n];
    for i in 0..m {
        for j in 0..n {
            s[j] += dy[i * n + j] as f64;
        }
    }
    s
}

/// Sum of elementwise binary cross-entropy of sigmoid(z) against t, and its
/// gradient with respect to z multiplied by `grad_scale`.
pub fn bce_logits(z: &[f32], t: &[f32], grad_scale: f64) -> (f64, Vec<f64>) {
    let mut loss = 0.0;
    let grad = z
        .iter()
        .zip(t)
        .map(|(&z, &t)| {
            let (z, t) = (z as f64, t as f64);
            loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            (activate(z, Activation::Sigmoid) - t) * grad_scale
        })
        .collect();
    (loss, grad)
}

/// One Keras-3 Adam step at 1-based step `t`; returns (params, m, v).
pub fn adam(
    params: &[f32],
    grads: &[f32],
    m: &[f32],
    v: &[f32],
    t: u64,
    cfg: &AdamConfig,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let alpha = cfg.lr as f64 * (1.0 - b2.powi(t as i32)).sqrt() / (1.0 - b1.powi(t as i32));
    let mut out = (
        vec![0.0; params.len()],
        vec![0.0; m.len()],
        vec![0.0; v.len()],
    );
    for i in 0..params.len() {
        let g = grads[i] as f64;
        let mi = b1 * m[i] as f64 + (1.0 - b1) * g;
        let vi = b2 * v[i] as f64 + (1.0 - b2) * g * g;
        out.0[i] = params[i] as f64 - alpha * mi / (vi.sqrt() + cfg.eps as f64);
        out.1[i] = mi;
        out.2[i] = vi;
    }
    out
}

/// ‖out − ref‖ / ‖ref‖ (plain ‖out‖ when ref is all zeros); infinite when any
/// output is NaN or infinite, so an unwritten (NaN-poisoned) element fails.
pub fn relative_error(out: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "length mismatch");
    let mut diff = 0.0;
    let mut norm = 0.0;
    for (&o, &r) in out.iter().zip(reference) {
        if !o.is_finite() {
            return f64::INFINITY;
        }
        diff += (o as f64 - r) * (o as f64 - r);
        norm += r * r;
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

/// Largest |out − ref| / (1 + |ref|); infinite on any non-finite output.
pub fn max_scaled_error(out: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "length mismatch");
    out.iter()
        .zip(reference)
        .map(|(&o, &r)| {
            if o.is_finite() {
                (o as f64 - r).abs() / (1.0 + r.abs())
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}
