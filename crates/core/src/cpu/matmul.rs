//! Row-major matrix products on top of the `gemm` crate. Transposes are
//! expressed through strides, so nothing is copied.

use crate::GemmShape;
use gemm::{gemm, Parallelism};

/// Below this many multiply-adds threading costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 20;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    if m * n * k >= PARALLEL_MIN_WORK && super::may_fork() {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// C[m,n] = A·B where A is m×k with strides (a_rs, a_cs) and B is k×n with
/// strides (b_rs, b_cs); C is dense row-major and overwritten. f32 for the
/// CPU path, f64 for the references' large products.
#[allow(clippy::too_many_arguments)]
pub(crate) fn strided<T: 'static + Copy + From<u8>>(
    a: &[T],
    (a_rs, a_cs): (usize, usize),
    b: &[T],
    (b_rs, b_cs): (usize, usize),
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(c.len() >= m * n, "output too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(T::from(0));
        return;
    }
    assert!(a.len() > (m - 1) * a_rs + (k - 1) * a_cs, "lhs too small");
    assert!(b.len() > (k - 1) * b_rs + (n - 1) * b_cs, "rhs too small");
    // SAFETY: the asserts above bound every index the strides reach, and `c`
    // is exclusively borrowed and does not alias `a` or `b`.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::from(0),
            T::from(1),
            false,
            false,
            false,
            parallelism(m, n, k),
        );
    }
}

/// Y[m,n] = X[m,k]·W[k,n].
pub fn matmul(x: &[f32], w: &[f32], y: &mut [f32], s: GemmShape) {
    let GemmShape { m, n, k } = s;
    strided(x, (k, 1), w, (n, 1), y, m, k, n);
}

/// dX[m,k] = dY[m,n]·W[k,n]ᵀ.
pub fn matmul_a_bt(dy: &[f32], w: &[f32], dx: &mut [f32], s: GemmShape) {
    let GemmShape { m, n, k } = s;
    strided(dy, (n, 1), w, (1, n), dx, m, n, k);
}

/// dW[k,n] = X[m,k]ᵀ·dY[m,n].
pub fn matmul_at_b(x: &[f32], dy: &[f32], dw: &mut [f32], s: GemmShape) {
    let GemmShape { m, n, k } = s;
    strided(x, (1, k), dy, (n, 1), dw, k, m, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::{random, SHAPES};
    use crate::reference::{self, relative_error};
    use crate::Activation;

    // fp32 products of length ≤ 784 against float64: well under 1e-5.
    const TOL: f64 = 1e-5;

    #[test]
    fn products_match_float64_reference() {
        for (tag, &(m, k, n)) in SHAPES.iter().enumerate() {
            let tag = tag as u64 * 10;
            let x = random(m * k, tag);
            let w = random(k * n, tag + 1);
            let dy = random(m * n, tag + 2);

            let s = GemmShape::new(m, n, k);
            let mut y = vec![f32::NAN; m * n];
            matmul(&x, &w, &mut y, s);
            let r = reference::dense_forward(&x, &w, None, s, Activation::Identity);
            assert!(relative_error(&y, &r) < TOL, "matmul {m}x{k}x{n}");

            let mut dx = vec![f32::NAN; m * k];
            matmul_a_bt(&dy, &w, &mut dx, s);
            let r = reference::dense_backward_input(&dy, &w, None, s);
            assert!(relative_error(&dx, &r) < TOL, "a_bt {m}x{k}x{n}");

            let mut dw = vec![f32::NAN; k * n];
            matmul_at_b(&x, &dy, &mut dw, s);
            let r = reference::dense_backward_weight(&x, &dy, s);
            assert!(relative_error(&dw, &r) < TOL, "at_b {m}x{k}x{n}");
        }
    }
}
