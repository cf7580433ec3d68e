//! A small RGB raster with the drawing the figures need: filled rectangles,
//! grayscale grids, lines and 8×8 bitmap text; encoded as PNG.

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

    /// A `thickness`-pixel line from (x0,y0) to (x1,y1) (Bresenham).
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, thickness: usize) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            if x >= 0 && y >= 0 {
                self.rect(x as usize, y as usize, thickness, thickness, c);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
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
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }
}
