//! Image figures: the lab's (originals on top, their codes as small
//! grayscale tiles, reconstructions below) and `compare`'s (one row of
//! reconstructions per model); one column per image, titled by class.

use crate::canvas::{Canvas, BLACK, GLYPH, WHITE};
use anyhow::{bail, Result};
use dae_data::write_atomically;
use std::path::Path;

/// One row of the figure: a labelled set of images, or of codes.
pub enum Row<'a> {
    Images {
        label: String,
        values: &'a [f32],
    },
    Codes {
        label: String,
        values: &'a [f32],
        dim: usize,
    },
}

/// What the figure shows: a column per sample (titled), a row per view.
pub struct FigureData<'a> {
    pub image: (usize, usize),
    pub titles: Vec<String>,
    pub rows: Vec<Row<'a>>,
}

/// Rows × columns of the code tile: 32 → 4×8.
fn code_grid(code_dim: usize) -> (usize, usize) {
    let cols = ((2 * code_dim) as f64).sqrt().ceil().max(1.0) as usize;
    (code_dim.div_ceil(cols), cols)
}

/// The `--image-shape H,W` flag, checked against the samples' `dim`.
pub fn parse_image_shape(spec: &Option<String>, dim: usize) -> Result<Option<(usize, usize)>> {
    let Some(spec) = spec else { return Ok(None) };
    let parts: Vec<_> = spec.split(',').map(|p| p.trim().parse::<usize>()).collect();
    match parts[..] {
        [Ok(h), Ok(w)] if h.checked_mul(w) == Some(dim) => Ok(Some((h, w))),
        [Ok(h), Ok(w)] => bail!(
            "--image-shape {h},{w} has {} pixels but samples have {dim}",
            h.checked_mul(w)
                .map_or("too many".to_string(), |p| p.to_string())
        ),
        _ => bail!("--image-shape '{spec}': expected H,W (e.g. 28,28)"),
    }
}

/// An image shape for a flat vector: the nearest square that holds it.
pub fn guess_image_shape(dim: usize) -> (usize, usize) {
    let side = (dim as f64).sqrt().ceil() as usize;
    (dim.div_ceil(side), side)
}

pub fn render(data: &FigureData, path: &Path) -> Result<()> {
    let count = data.titles.len();
    let (h, w) = data.image;
    // Small images are enlarged to about 84 px; large ones shown 1:1.
    let scale = (84 / h.max(w)).max(1);
    let (ih, iw) = (h * scale, w * scale);
    let column = iw.max(11 * GLYPH) + 8;
    let label_width = data
        .rows
        .iter()
        .map(|r| match r {
            Row::Images { label, .. } | Row::Codes { label, .. } => label.len(),
        })
        .max()
        .unwrap_or(0)
        .max(8);
    let left = (label_width + 1) * GLYPH;
    let gap = 10;
    let top = 4 + GLYPH + 4;
    let row_height = |r: &Row| match r {
        Row::Images { .. } => ih,
        Row::Codes { dim, .. } => {
            let (rows, cols) = code_grid(*dim);
            rows * (iw / cols).clamp(2, 12)
        }
    };
    let height = top + data.rows.iter().map(|r| row_height(r) + gap).sum::<usize>();
    let mut c = Canvas::new(left + column * count, height, WHITE);
    for (i, title) in data.titles.iter().enumerate() {
        c.text(left + i * column + 2, 4, title, column - 4, BLACK);
    }
    let mut y = top;
    for row in &data.rows {
        let rh = row_height(row);
        let label = match row {
            Row::Images { label, .. } | Row::Codes { label, .. } => label,
        };
        c.text(4, y + rh / 2 - GLYPH / 2, label, left - 4, BLACK);
        for i in 0..count {
            match row {
                Row::Images { values, .. } => {
                    // A flat sample may not fill h×w (guess_image_shape
                    // rounds up, e.g. 50 → 7×8): pad the rest with black.
                    let stride = values.len() / count;
                    let img = &values[i * stride..(i + 1) * stride];
                    let mut big = vec![0.0; ih * iw];
                    for (r, out) in big.chunks_exact_mut(iw).enumerate() {
                        for (col, o) in out.iter_mut().enumerate() {
                            *o = img
                                .get((r / scale) * w + col / scale)
                                .copied()
                                .unwrap_or(0.0);
                        }
                    }
                    c.gray_grid(left + i * column + (column - iw) / 2, y, &big, ih, iw, 1);
                }
                Row::Codes { values, dim, .. } => {
                    // ReLU codes are ≥ 0: scale by the largest shown value.
                    let max = values.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
                    let code: Vec<f32> = values[i * dim..(i + 1) * dim]
                        .iter()
                        .map(|v| v / max)
                        .collect();
                    let (rows, cols) = code_grid(*dim);
                    let cell = (iw / cols).clamp(2, 12);
                    c.gray_grid(
                        left + i * column + (column - cols * cell) / 2,
                        y,
                        &code,
                        rows,
                        cols,
                        cell,
                    );
                }
            }
        }
        y += rh + gap;
    }
    Ok(write_atomically(path, &c.png()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_tiles_and_shapes() {
        assert_eq!(code_grid(32), (4, 8));
        assert_eq!(code_grid(1), (1, 2));
        assert_eq!(guess_image_shape(784), (28, 28));
        assert_eq!(guess_image_shape(10), (3, 4));
    }
}
