//! Line charts (loss curves, throughput against batch size) as PNG.

use crate::canvas::{Canvas, Rgb, BLACK, GLYPH, WHITE};
use anyhow::Result;
use dae_data::write_atomically;
use std::path::Path;

/// Distinguishable line colours (Okabe–Ito).
pub const PALETTE: [Rgb; 7] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [120, 120, 120],
];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub series: Vec<Series>,
}

/// A tick label with as many decimals as the axis span needs.
fn fmt_tick(v: f64, span: f64) -> String {
    if v.abs() >= 1e4 {
        return format!("{:.0}k", v / 1e3);
    }
    let decimals = (2.0 - span.max(1e-12).log10().floor()).clamp(0.0, 5.0) as usize;
    format!("{v:.decimals$}")
}

pub fn render(chart: &Chart, path: &Path) -> Result<()> {
    let (w, h) = (720usize, 440usize);
    let (left, right, top, bottom) = (72usize, 16usize, 44usize, 48usize);
    let mut c = Canvas::new(w, h, WHITE);
    c.text(4, 6, &chart.title, w - 8, BLACK);
    let tx = |x: f64| if chart.log_x { x.max(1e-12).log10() } else { x };
    let pts = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.1.is_finite()) {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = ((w - left - right) as f64, (h - top - bottom) as f64);
    let px = |x: f64| (left as f64 + (tx(x) - x0) / (x1 - x0) * pw).round() as i64;
    let py = |y: f64| (top as f64 + (y1 - y) / (y1 - y0) * ph).round() as i64;
    // Axes, ticks and grid.
    let grid = [225, 225, 225];
    for i in 0..=5 {
        let yv = y0 + (y1 - y0) * i as f64 / 5.0;
        let y = py(yv);
        c.line((left as i64, y), ((w - right) as i64, y), grid, 1);
        let label = fmt_tick(yv, y1 - y0);
        c.text(
            left.saturating_sub(label.len() * GLYPH + 4),
            y as usize - 4,
            &label,
            64,
            BLACK,
        );
    }
    for i in 0..=5 {
        let xt = x0 + (x1 - x0) * i as f64 / 5.0;
        let xv = if chart.log_x { 10f64.powf(xt) } else { xt };
        let x = px(xv);
        c.line((x, top as i64), (x, (h - bottom) as i64), grid, 1);
        let label = if chart.log_x {
            fmt_tick(xv, xv)
        } else {
            fmt_tick(xv, x1 - x0)
        };
        c.text(
            (x as usize).saturating_sub(label.len() * GLYPH / 2),
            h - bottom + 6,
            &label,
            80,
            BLACK,
        );
    }
    c.line(
        (left as i64, top as i64),
        (left as i64, (h - bottom) as i64),
        BLACK,
        1,
    );
    c.line(
        (left as i64, (h - bottom) as i64),
        ((w - right) as i64, (h - bottom) as i64),
        BLACK,
        1,
    );
    c.text(
        left + (pw as usize) / 2 - chart.x_label.len() * GLYPH / 2,
        h - 18,
        &chart.x_label,
        w,
        BLACK,
    );
    c.text(4, top - 16, &chart.y_label, left + 300, BLACK);
    for (i, s) in chart.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut prev = None;
        for &(x, y) in s.points.iter().filter(|p| p.1.is_finite()) {
            let p = (px(x), py(y));
            if let Some(q) = prev {
                c.line(q, p, colour, 2);
            } else {
                c.rect(p.0.max(0) as usize, p.1.max(0) as usize, 2, 2, colour);
            }
            prev = Some(p);
        }
        let ly = top + 8 + i * 14;
        c.rect(w - right - 220, ly + 3, 16, 3, colour);
        c.text(w - right - 198, ly, &s.name, 196, BLACK);
    }
    Ok(write_atomically(path, &c.png()?)?)
}
