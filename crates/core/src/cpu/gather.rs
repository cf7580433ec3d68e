//! The batch gather: rows picked by index from u8 (scaled by 1/255) or f32
//! pixels. The CPU's fast form of kernels/data.cu's gather, with the same
//! bits: the division the kernel does, 16 lanes at a time (an IEEE division
//! rounds the same in every lane width).

use super::simd::simd_dispatch;
use rayon::prelude::*;

/// Rows gathered per parallel task.
const ROWS_PER_TASK: usize = 64;

/// Where the gathered rows come from: [rows, dim] pixels.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

#[inline(always)]
fn scale_row_body(out: &mut [f32], bytes: &[u8]) {
    for (o, &v) in out.iter_mut().zip(bytes) {
        *o = v as f32 / 255.0;
    }
}

simd_dispatch!(fn scale_row(out: &mut [f32], bytes: &[u8]) => scale_row_body);

/// Asks for the cache lines of the row at `start` ahead of its use: the
/// rows are scattered over the data set, so each starts with a cache miss
/// that a load at use time waits for.
#[inline(always)]
fn prefetch_row(pixels: Pixels<'_>, start: usize, dim: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let (base, bytes) = match pixels {
            Pixels::U8(p) => (p[start..start + dim].as_ptr(), dim),
            Pixels::F32(p) => (p[start..start + dim].as_ptr() as *const u8, dim * 4),
        };
        for line in (0..bytes).step_by(64) {
            // SAFETY: `line` < the row's byte length, so the address is
            // inside the row slice; a prefetch reads nothing architecturally.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(line) as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (pixels, start, dim);
}

/// out[i, :] = pixels[rows[i], :] (u8 scaled to [0,1]), for every index.
/// Panics if a row is out of range (callers check rows against the data).
pub fn gather(pixels: Pixels<'_>, rows: &[u32], dim: usize, out: &mut [f32]) {
    let out = &mut out[..rows.len() * dim];
    out.par_chunks_mut(dim * ROWS_PER_TASK)
        .zip(rows.par_chunks(ROWS_PER_TASK))
        .for_each(|(out, rows)| {
            for (i, (o, &r)) in out.chunks_exact_mut(dim).zip(rows).enumerate() {
                let start = r as usize * dim;
                if let Some(&next) = rows.get(i + 1) {
                    prefetch_row(pixels, next as usize * dim, dim);
                }
                match pixels {
                    Pixels::U8(p) => scale_row(o, &p[start..start + dim]),
                    Pixels::F32(p) => o.copy_from_slice(&p[start..start + dim]),
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_scales_to_the_scalar_division() {
        // All 256 values, at lengths that leave vector remainders.
        let bytes: Vec<u8> = (0..=255u8).chain(0..=200).collect();
        for len in [1, 15, 16, 17, 255, bytes.len()] {
            let mut out = vec![f32::NAN; len];
            scale_row(&mut out, &bytes[..len]);
            for (o, &v) in out.iter().zip(&bytes) {
                assert_eq!(o.to_bits(), (v as f32 / 255.0).to_bits(), "byte {v}");
            }
        }
    }

    #[test]
    fn gathers_scaled_rows_in_index_order() {
        let p = [0u8, 255, 51, 102, 1, 2];
        let mut out = [f32::NAN; 6];
        gather(Pixels::U8(&p), &[2, 0, 2], 2, &mut out);
        assert_eq!(
            out,
            [1.0 / 255.0, 2.0 / 255.0, 0.0, 1.0, 1.0 / 255.0, 2.0 / 255.0]
        );
        let f = [0.5f32, 0.25, 1.0, 0.0];
        let mut out = [f32::NAN; 2];
        gather(Pixels::F32(&f), &[1], 2, &mut out);
        assert_eq!(out, [1.0, 0.0]);
    }
}
