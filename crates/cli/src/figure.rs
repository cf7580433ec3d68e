//! The lab's figure: originals on top, their codes as small grayscale tiles,
//! reconstructions below, one column per image, labelled with class names.

use anyhow::Result;
use dae_model::checkpoint::write_atomically;
use std::path::Path;

/// Grayscale canvas, 0 = black.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

const GLYPH: usize = 8;

impl Canvas {
    fn new(width: usize, height: usize, background: u8) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, value: u8) {
        for row in y..(y + h).min(self.height) {
            let start = row * self.width;
            for col in x..(x + w).min(self.width) {
                self.pixels[start + col] = value;
            }
        }
    }

    /// Draws a `rows`×`cols` grid of values in [0,1], each as a cell×cell square.
    fn grid(&mut self, x: usize, y: usize, values: &[f32], rows: usize, cols: usize, cell: usize) {
        for r in 0..rows {
            for c in 0..cols {
                let v = values.get(r * cols + c).copied().unwrap_or(0.0);
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                self.rect(x + c * cell, y + r * cell, cell, cell, g);
            }
        }
    }

    /// 8×8 bitmap text (ASCII), clipped to `max_width` pixels.
    fn text(&mut self, x: usize, y: usize, text: &str, max_width: usize, value: u8) {
        let max_chars = max_width / GLYPH;
        for (i, ch) in text.chars().take(max_chars).enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize).min(127)];
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..GLYPH {
                    if bits & (1 << gx) != 0 {
                        self.rect(x + i * GLYPH + gx, y + gy, 1, 1, value);
                    }
                }
            }
        }
    }

    fn png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

/// What the figure shows: `count` samples, each an original and its
/// reconstruction of `image` (height, width) and a code of `code_dim`.
pub struct FigureData<'a> {
    pub image: (usize, usize),
    pub originals: &'a [f32],
    pub codes: &'a [f32],
    pub reconstructions: &'a [f32],
    pub code_dim: usize,
    pub titles: Vec<String>,
}

/// Rows × columns of the code tile: 32 → 4×8.
fn code_grid(code_dim: usize) -> (usize, usize) {
    let cols = ((2 * code_dim) as f64).sqrt().ceil().max(1.0) as usize;
    (code_dim.div_ceil(cols), cols)
}

/// An image shape for a flat vector: the nearest square that holds it.
pub fn guess_image_shape(dim: usize) -> (usize, usize) {
    let side = (dim as f64).sqrt().ceil() as usize;
    (dim.div_ceil(side), side)
}

pub fn render(data: &FigureData, path: &Path) -> Result<()> {
    let count = data.titles.len();
    let (h, w) = data.image;
    let dim = h * w;
    let scale = (84 / h.max(w)).max(1);
    let (ih, iw) = (h * scale, w * scale);
    let column = iw.max(11 * GLYPH) + 8;
    let (code_rows, code_cols) = code_grid(data.code_dim);
    let cell = (iw / code_cols).clamp(2, 12);
    let code_h = code_rows * cell;
    let left = 15 * GLYPH;
    let gap = 10;
    let top = 4 + GLYPH + 4;
    let height = top + ih + gap + code_h + gap + ih + 6;
    let width = left + column * count;
    let mut c = Canvas::new(width, height, 255);
    let rows_y = [top, top + ih + gap, top + ih + gap + code_h + gap];
    let row_h = [ih, code_h, ih];
    for (label, (y, rh)) in ["original", "code", "reconstruction"]
        .iter()
        .zip(rows_y.iter().zip(row_h))
    {
        c.text(4, y + rh / 2 - GLYPH / 2, label, left - 4, 0);
    }
    let code_max = data.codes.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    for i in 0..count {
        let x = left + i * column + (column - iw) / 2;
        c.text(left + i * column + 2, 4, &data.titles[i], column - 4, 0);
        let upscale = |v: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0; ih * iw];
            for (r, row) in out.chunks_exact_mut(iw).enumerate() {
                for (col, o) in row.iter_mut().enumerate() {
                    *o = v.get((r / scale) * w + col / scale).copied().unwrap_or(0.0);
                }
            }
            out
        };
        c.grid(
            x,
            rows_y[0],
            &upscale(&data.originals[i * dim..(i + 1) * dim]),
            ih,
            iw,
            1,
        );
        let code: Vec<f32> = data.codes[i * data.code_dim..(i + 1) * data.code_dim]
            .iter()
            .map(|v| v / code_max)
            .collect();
        let cx = left + i * column + (column - code_cols * cell) / 2;
        c.grid(cx, rows_y[1], &code, code_rows, code_cols, cell);
        c.grid(
            x,
            rows_y[2],
            &upscale(&data.reconstructions[i * dim..(i + 1) * dim]),
            ih,
            iw,
            1,
        );
    }
    write_atomically(path, &c.png()?)
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
