//! Deterministic column sums (the bias gradient).

use super::CHUNK;
use rayon::prelude::*;

/// out[j] = Σ_i dy[i,j] for dy [m,n]. Rows are summed in fixed chunks whose
/// partial sums are then added in chunk order: same bits on any thread count.
pub fn column_sums(dy: &[f32], out: &mut [f32], m: usize, n: usize) {
    let out = &mut out[..n];
    let partials: Vec<Vec<f32>> = dy[..m * n]
        .par_chunks(n * CHUNK * 4)
        .map(|rows| {
            let mut acc = vec![0.0f32; n];
            for row in rows.chunks_exact(n) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .collect();
    out.fill(0.0);
    for p in &partials {
        for (o, &v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
}
