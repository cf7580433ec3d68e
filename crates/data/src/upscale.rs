//! Upscaling a u8 image dataset (very high-dimensional inputs from MNIST):
//! bilinear, pixel centres aligned, rounded back to u8.

use crate::error::{Error, Result};
use crate::{Dataset, Pixels};
use rayon::prelude::*;

/// Bilinear resize of one u8 image with pixel centres aligned (as PIL and
/// OpenCV's INTER_LINEAR), rounded to u8.
fn resize_bilinear(src: &[u8], (h, w): (usize, usize), size: usize, dst: &mut [u8]) {
    let coord = |i: usize, n: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * n as f32 / size as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let x0 = x.floor() as usize;
        (x0, (x0 + 1).min(n - 1), x - x0 as f32)
    };
    for r in 0..size {
        let (y0, y1, fy) = coord(r, h);
        for c in 0..size {
            let (x0, x1, fx) = coord(c, w);
            let p = |y: usize, x: usize| src[y * w + x] as f32;
            let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
            let bottom = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
            dst[r * size + c] = (top * (1.0 - fy) + bottom * fy).round() as u8;
        }
    }
}

/// The first `limit` (or all) images of `d` resized to `size`×`size`, in one
/// buffer, with their count. Takes u8 image-shaped data only.
pub fn upscaled(d: &Dataset, limit: Option<usize>, size: usize) -> Result<(usize, Vec<u8>)> {
    let Pixels::U8(pixels) = &d.pixels else {
        return Err(Error::Unsupported {
            problem: "upscale takes uint8 image data (an IDX directory or a uint8 .npz)".into(),
        });
    };
    let shape = d.image_shape.ok_or_else(|| Error::Unsupported {
        problem: "upscale needs image-shaped data ([n, h, w])".into(),
    })?;
    let rows = limit.map_or(d.rows, |l| l.min(d.rows));
    let len = size
        .checked_mul(size)
        .and_then(|p| p.checked_mul(rows))
        .ok_or_else(|| {
            Error::too_large(
                format!("--size {size}"),
                format!("{rows} upscaled images overflow"),
            )
        })?;
    let mut out = vec![0u8; len];
    out.par_chunks_mut(size * size)
        .enumerate()
        .for_each(|(i, dst)| {
            resize_bilinear(&pixels[i * d.dim..(i + 1) * d.dim], shape, size, dst)
        });
    Ok((rows, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_corners() {
        let src = [7u8; 9];
        let mut dst = [0u8; 36];
        resize_bilinear(&src, (3, 3), 6, &mut dst);
        assert!(dst.iter().all(|&v| v == 7));
        let src = [0u8, 255, 0, 255];
        let mut dst = [0u8; 16];
        resize_bilinear(&src, (2, 2), 4, &mut dst);
        assert_eq!(dst[0], 0);
        assert_eq!(dst[3], 255);
        assert_eq!(dst[1], 64); // a quarter of the way from 0 to 255
    }
}
