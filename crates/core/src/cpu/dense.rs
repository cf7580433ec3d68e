//! A dense layer's three products with their epilogues, on the CPU.

use super::simd::{simd_dispatch, PARALLEL_MIN_ELEMENTS};
use super::{matmul, matmul_a_bt, CHUNK};
use crate::{Activation, GemmShape};
use rayon::prelude::*;

#[inline(always)]
fn bias_act_rows(y: &mut [f32], b: &[f32], act: Activation) {
    let n = b.len();
    // One loop per activation so each vectorises.
    match act {
        Activation::Identity => {
            for row in y.chunks_exact_mut(n) {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v += bj;
                }
            }
        }
        Activation::Relu => {
            for row in y.chunks_exact_mut(n) {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v = (*v + bj).max(0.0);
                }
            }
        }
        Activation::Sigmoid => {
            for row in y.chunks_exact_mut(n) {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v = 1.0 / (1.0 + (-(*v + bj)).exp());
                }
            }
        }
    }
}

simd_dispatch!(fn bias_act_block(y: &mut [f32], b: &[f32], act: Activation) => bias_act_rows);

#[inline(always)]
fn mask_block_body(d: &mut [f32], a: &[f32]) {
    for (d, &a) in d.iter_mut().zip(a) {
        *d = if a > 0.0 { *d } else { 0.0 };
    }
}

simd_dispatch!(fn mask_block(d: &mut [f32], a: &[f32]) => mask_block_body);

/// In place: y[i,j] = act(y[i,j] + b[j]) for y [rows, n].
pub fn bias_activation(y: &mut [f32], b: &[f32], n: usize, act: Activation) {
    let b = &b[..n];
    if y.len() < PARALLEL_MIN_ELEMENTS || !super::may_fork() {
        bias_act_block(y, b, act);
    } else {
        y.par_chunks_mut(n * CHUNK)
            .for_each(|rows| bias_act_block(rows, b, act));
    }
}

/// Y[m,n] = act(X[m,k]·W[k,n] + b).
pub fn dense_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    s: GemmShape,
    act: Activation,
) {
    let y = &mut y[..s.y_len()];
    matmul(x, w, y, s);
    bias_activation(y, b, s.n, act);
}

/// dX[m,k] = dY[m,n]·Wᵀ, zeroed where the previous layer's ReLU output
/// `mask` [m,k] was not positive (so dX is the pre-activation gradient).
pub fn dense_backward_input(
    dy: &[f32],
    w: &[f32],
    mask: Option<&[f32]>,
    dx: &mut [f32],
    s: GemmShape,
) {
    let dx = &mut dx[..s.x_len()];
    matmul_a_bt(dy, w, dx, s);
    if let Some(mask) = mask {
        let (mask, k) = (&mask[..s.x_len()], s.k);
        if dx.len() < PARALLEL_MIN_ELEMENTS || !super::may_fork() {
            mask_block(dx, mask);
        } else {
            dx.par_chunks_mut(k * CHUNK)
                .zip(mask.par_chunks(k * CHUNK))
                .for_each(|(d, a)| mask_block(d, a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::{random, SHAPES};
    use crate::reference::{self, relative_error};

    const TOL: f64 = 1e-5;

    #[test]
    fn forward_epilogues_match_reference() {
        for (tag, &(m, k, n)) in SHAPES.iter().enumerate() {
            let tag = 100 + tag as u64 * 10;
            let x = random(m * k, tag);
            let w = random(k * n, tag + 1);
            let b = random(n, tag + 2);
            for act in [Activation::Identity, Activation::Relu, Activation::Sigmoid] {
                let mut y = vec![f32::NAN; m * n];
                let s = GemmShape::new(m, n, k);
                dense_forward(&x, &w, &b, &mut y, s, act);
                let r = reference::dense_forward(&x, &w, Some(&b), s, act);
                let e = relative_error(&y, &r);
                assert!(e < TOL, "{act:?} {m}x{k}x{n}: {e}");
            }
        }
    }

    #[test]
    fn backward_matches_reference() {
        for (tag, &(m, k, n)) in SHAPES.iter().enumerate() {
            let tag = 200 + tag as u64 * 10;
            let x = random(m * k, tag);
            let w = random(k * n, tag + 1);
            let dy = random(m * n, tag + 2);
            let mask = random(m * k, tag + 3);

            let s = GemmShape::new(m, n, k);
            let mut dx = vec![f32::NAN; m * k];
            dense_backward_input(&dy, &w, Some(&mask), &mut dx, s);
            let r = reference::dense_backward_input(&dy, &w, Some(&mask), s);
            assert!(relative_error(&dx, &r) < TOL, "dx {m}x{k}x{n}");
            assert!(dx.iter().zip(&mask).all(|(d, a)| *a > 0.0 || *d == 0.0));

            let (mut dw, mut db) = (vec![f32::NAN; k * n], vec![f32::NAN; n]);
            crate::cpu::matmul_at_b(&x, &dy, &mut dw, s);
            crate::cpu::column_sums(&dy, &mut db, m, n);
            let r = reference::dense_backward_weight(&x, &dy, s);
            assert!(relative_error(&dw, &r) < TOL, "dw {m}x{k}x{n}");
            let r = reference::column_sums(&dy, m, n);
            assert!(relative_error(&db, &r) < TOL, "db {m}x{k}x{n}");
        }
    }
}
