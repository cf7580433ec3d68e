//! The batch gather: rows picked by index from u8 (scaled by 1/255) or f32
//! pixels. The CPU's fast form of kernels/data.cu's gather, with the same
//! bits (a lookup table holds exactly the division the kernel does).

use rayon::prelude::*;

/// `p as f32 / 255.0` for every byte.
static BYTE_TO_UNIT: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / 255.0;
        i += 1;
    }
    t
};

/// Where the gathered rows come from: [rows, dim] pixels.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

/// out[i, :] = pixels[rows[i], :] (u8 scaled to [0,1]), for every index.
/// Panics if a row is out of range (callers check rows against the data).
pub fn gather(pixels: Pixels<'_>, rows: &[u32], dim: usize, out: &mut [f32]) {
    let out = &mut out[..rows.len() * dim];
    out.par_chunks_mut(dim * 64)
        .zip(rows.par_chunks(64))
        .for_each(|(out, rows)| {
            for (o, &r) in out.chunks_exact_mut(dim).zip(rows) {
                let start = r as usize * dim;
                match pixels {
                    Pixels::U8(p) => {
                        for (o, &v) in o.iter_mut().zip(&p[start..start + dim]) {
                            *o = BYTE_TO_UNIT[v as usize];
                        }
                    }
                    Pixels::F32(p) => o.copy_from_slice(&p[start..start + dim]),
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_the_division() {
        for v in 0..=255u8 {
            assert_eq!(
                BYTE_TO_UNIT[v as usize].to_bits(),
                (v as f32 / 255.0).to_bits()
            );
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
