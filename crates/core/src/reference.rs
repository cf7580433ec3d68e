//! Naive float64 references of every op. Slow and obviously right: the CPU
//! ops and the CUDA kernels are both checked against these.

use crate::{Activation, AdamConfig, GemmShape};

/// Above this many multiply-adds the products use the `gemm` crate's f64
/// kernel instead of the naive triple loop (which checks it in a test).
const NAIVE_MAX_WORK: usize = 1 << 24;

/// C[m,n] = A·B in float64 from f32 operands given with (row, column)
/// strides.
fn product(
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    if m * n * k <= NAIVE_MAX_WORK {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    acc += a[i * a_rs + p * a_cs] as f64 * b[p * b_rs + j * b_cs] as f64;
                }
                c[i * n + j] = acc;
            }
        }
        return c;
    }
    let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    crate::cpu::strided(&a64, (a_rs, a_cs), &b64, (b_rs, b_cs), &mut c, m, k, n);
    c
}

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
    s: GemmShape,
    act: Activation,
) -> Vec<f64> {
    let GemmShape { m, n, k } = s;
    let mut y = product(x, (k, 1), w, (n, 1), m, k, n);
    for row in y.chunks_exact_mut(n.max(1)) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = activate(*v + b.map_or(0.0, |b| b[j] as f64), act);
        }
    }
    y
}

/// dX = dY·Wᵀ for dY [m,n], W [k,n]; zeroed where `mask` [m,k] is not > 0.
pub fn dense_backward_input(dy: &[f32], w: &[f32], mask: Option<&[f32]>, s: GemmShape) -> Vec<f64> {
    let GemmShape { m, n, k } = s;
    let mut dx = product(dy, (n, 1), w, (1, n), m, n, k);
    if let Some(mask) = mask {
        for (d, &a) in dx.iter_mut().zip(mask) {
            if a <= 0.0 {
                *d = 0.0;
            }
        }
    }
    dx
}

/// dW = Xᵀ·dY for X [m,k], dY [m,n].
pub fn dense_backward_weight(x: &[f32], dy: &[f32], s: GemmShape) -> Vec<f64> {
    let GemmShape { m, n, k } = s;
    product(x, (1, k), dy, (n, 1), k, m, n)
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
/// With `cfg.weight_decay`, AdamW: p·(1 − lr·wd) − the Adam step.
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
    let decay = 1.0 - cfg.lr as f64 * cfg.weight_decay as f64;
    let mut out = (
        vec![0.0; params.len()],
        vec![0.0; m.len()],
        vec![0.0; v.len()],
    );
    for i in 0..params.len() {
        let g = grads[i] as f64;
        let mi = b1 * m[i] as f64 + (1.0 - b1) * g;
        let vi = b2 * v[i] as f64 + (1.0 - b2) * g * g;
        out.0[i] = params[i] as f64 * decay - alpha * mi / (vi.sqrt() + cfg.eps as f64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, Rng};

    /// The library path of the f64 products agrees with the naive loop.
    #[test]
    fn fast_and_naive_products_agree() {
        let (m, k, n) = (300, 257, 231); // above NAIVE_MAX_WORK
        assert!(m * k * n > NAIVE_MAX_WORK);
        let mut rng = Rng::new(9, Purpose::Test, 0);
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let fast = product(&a, (k, 1), &b, (n, 1), m, k, n);
        for &(i, j) in &[(0, 0), (m - 1, n - 1), (123, 45), (299, 0)] {
            let naive: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
            assert!((fast[i * n + j] - naive).abs() < 1e-12, "({i},{j})");
        }
        let t = product(&a, (1, k), &a, (k, 1), k, m, k); // AᵀA, transposed strides
        let naive: f64 = (0..m)
            .map(|p| a[p * k + 3] as f64 * a[p * k + 5] as f64)
            .sum();
        assert!((t[3 * k + 5] - naive).abs() < 1e-12);
    }
}
