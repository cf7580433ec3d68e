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

#[inline(always)]
fn add_rows_of_body(acc: &mut [f32], rows: &[f32], n: usize, first: usize) {
    let w = acc.len();
    for row in rows.chunks_exact(n) {
        for (a, &v) in acc.iter_mut().zip(&row[first..first + w]) {
            *a += v;
        }
    }
}

simd_dispatch!(fn add_rows_of(acc: &mut [f32], rows: &[f32], n: usize, first: usize) => add_rows_of_body);

/// out[j] = Σ_i dy[i,j] for the columns `cols` of dy [m,n] (`out` holds
/// all n): one thread's share, with each column's bits as `column_sums`
/// gives them (the same partials of the same rows, in the same order).
pub fn column_sums_of(
    dy: &[f32],
    out: &mut [f32],
    m: usize,
    n: usize,
    cols: std::ops::Range<usize>,
) {
    if cols.is_empty() {
        return;
    }
    let first = cols.start;
    let out = &mut out[cols];
    out.fill(0.0);
    let dy = &dy[..m * n];
    if m <= ROWS_PER_PARTIAL {
        // One partial: summed straight into `out`, as `column_sums` does.
        add_rows_of(out, dy, n, first);
        return;
    }
    let mut partial = vec![0.0f32; out.len()];
    for rows in dy.chunks(n * ROWS_PER_PARTIAL) {
        partial.fill(0.0);
        add_rows_of(&mut partial, rows, n, first);
        add_rows(out, &partial);
    }
}

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
    if !super::may_fork() {
        return add_rows(acc, add);
    }
    acc.par_chunks_mut(CHUNK * 1024)
        .zip(add.par_chunks(CHUNK * 1024))
        .for_each(|(a, b)| add_rows(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::random;

    #[test]
    fn column_shares_have_the_whole_sums_bits() {
        for (tag, (m, n)) in [(1, 1), (255, 17), (256, 33), (257, 784), (1000, 130)]
            .into_iter()
            .enumerate()
        {
            let dy = random(m * n, 500 + tag as u64);
            let mut whole = vec![f32::NAN; n];
            column_sums(&dy, &mut whole, m, n);
            for parts in [2usize, 3, 7] {
                let mut shared = vec![f32::NAN; n];
                for p in 0..parts {
                    let cols = n * p / parts..n * (p + 1) / parts;
                    column_sums_of(&dy, &mut shared, m, n, cols);
                }
                let same = whole
                    .iter()
                    .zip(&shared)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{m}x{n} in {parts} shares (tag {tag})");
            }
        }
    }
}
