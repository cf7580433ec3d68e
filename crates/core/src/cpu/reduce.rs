//! Deterministic column sums (the bias gradient), and gradient
//! accumulation.

use super::simd::simd_dispatch;
use super::CHUNK;
use rayon::prelude::*;

#[inline(always)]
fn add_rows_body(acc: &mut [f32], rows: &[f32]) {
    for row in rows.chunks_exact(acc.len()) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

simd_dispatch!(fn add_rows(acc: &mut [f32], rows: &[f32]) => add_rows_body);

/// Rows summed per partial: fixed, so the bits do not depend on threads.
const ROWS_PER_PARTIAL: usize = CHUNK * 4;

/// out[j] = Σ_i dy[i,j] for dy [m,n]. Rows are summed in fixed chunks whose
/// partial sums are then added in chunk order: same bits on any thread count.
pub fn column_sums(dy: &[f32], out: &mut [f32], m: usize, n: usize) {
    let out = &mut out[..n];
    let partial = |rows: &[f32]| {
        let mut acc = vec![0.0f32; n];
        add_rows(&mut acc, rows);
        acc
    };
    let dy = &dy[..m * n];
    if m <= ROWS_PER_PARTIAL {
        // One partial: sum straight into `out` (0 + x = x, the same bits).
        out.fill(0.0);
        add_rows(out, dy);
        return;
    }
    let partials: Vec<Vec<f32>> = dy.par_chunks(n * ROWS_PER_PARTIAL).map(partial).collect();
    out.fill(0.0);
    for p in &partials {
        add_rows(out, p);
    }
}

/// acc[i] += add[i]: each element one fp32 addition, so the bits do not
/// depend on how the work is split.
pub fn accumulate_add(acc: &mut [f32], add: &[f32]) {
    let add = &add[..acc.len()];
    acc.par_chunks_mut(CHUNK * 1024)
        .zip(add.par_chunks(CHUNK * 1024))
        .for_each(|(a, b)| add_rows(a, b));
}
