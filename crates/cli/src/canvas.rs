//! A small RGB raster with the drawing the image figures need: filled
//! rectangles, grayscale grids and 8×8 bitmap text; encoded as PNG.

use anyhow::Result;

pub type Rgb = [u8; 3];
pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GLYPH: usize = 8;

pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            width,
            height,
            pixels: background.repeat(width * height),
        }
    }

    pub fn set(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                self.set(col, row, c);
            }
        }
    }

    /// A `rows`×`cols` grid of values in [0,1] as gray cells of cell×cell pixels.
    pub fn gray_grid(
        &mut self,
        x: usize,
        y: usize,
        values: &[f32],
        rows: usize,
        cols: usize,
        cell: usize,
    ) {
        for r in 0..rows {
            for c in 0..cols {
                let v = values.get(r * cols + c).copied().unwrap_or(0.0);
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                self.rect(x + c * cell, y + r * cell, cell, cell, [g, g, g]);
            }
        }
    }

    /// ASCII text in an 8×8 bitmap font, clipped to `max_width` pixels.
    pub fn text(&mut self, x: usize, y: usize, text: &str, max_width: usize, c: Rgb) {
        for (i, ch) in text.chars().take(max_width / GLYPH).enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize).min(127)];
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..GLYPH {
                    if bits & (1 << gx) != 0 {
                        self.set(x + i * GLYPH + gx, y + gy, c);
                    }
                }
            }
        }
    }

    pub fn png(&self) -> Result<Vec<u8>> {
        crate::chart::encode_png(&self.pixels, self.width as u32, self.height as u32)
    }
}
