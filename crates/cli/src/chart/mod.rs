//! Line charts as PNG (training history, throughput against batch size,
//! validation loss per model), drawn with plotters into an RGB buffer and
//! encoded with `png`; text in the embedded DejaVu Sans.
//!
//! A chart is one or more panels stacked over a shared x axis; each panel's
//! legend sits in a column right of the plots, so it never covers a line.

mod axis;
mod history;
#[cfg(test)]
mod tests;

pub use axis::Scale;
pub use history::history_chart;

use anyhow::{bail, Context, Result};
use axis::Axis;
use dae_data::write_atomically;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Distinguishable line colours (Okabe–Ito).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One plot: its y axis and the lines on it.
pub struct Panel {
    pub y_label: String,
    pub y_scale: Scale,
    pub series: Vec<Series>,
}

pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub x_scale: Scale,
    /// Top to bottom; the first is the tallest.
    pub panels: Vec<Panel>,
}

/// Pixel rectangle, `x0..x1` × `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

#[cfg(test)]
impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// Where things were drawn: for tests, which check the pixels.
#[derive(Debug)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// Each panel's plotting area (inside the axes).
    pub plots: Vec<Rect>,
    /// Each series' legend entry (swatch and name), in panel order.
    pub legend: Vec<Rect>,
}

/// A series' colour: by its place among all the chart's series.
pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

const FONT: &str = "sans-serif";
const PLOT_WIDTH: u32 = 640;
const TOP_PANEL_HEIGHT: u32 = 400;
const LOWER_PANEL_HEIGHT: u32 = 200;
/// Longest legend name drawn in full, in pixels; longer ones are cut.
const MAX_NAME_WIDTH: u32 = 260;
const SWATCH: i32 = 22;
const ENTRY_HEIGHT: i32 = 18;

/// Registers the embedded font with plotters once per process.
fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        let bytes = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    if !ok {
        bail!("the embedded font (DejaVu Sans) did not load");
    }
    Ok(())
}

impl LineChart {
    /// Renders the chart and writes it as a PNG, atomically.
    pub fn render_png(&self, path: &Path) -> Result<()> {
        let (rgb, layout) = self.render()?;
        let png = encode_png(&rgb, layout.width, layout.height)?;
        Ok(write_atomically(path, &png)?)
    }

    /// Fails, naming the series and point, on what cannot be drawn: no
    /// panel or series, a series without points, a non-finite value, or a
    /// value ≤ 0 on a logarithmic axis.
    fn check(&self) -> Result<()> {
        let t = &self.title;
        if self.panels.is_empty() {
            bail!("chart '{t}': nothing to draw (no panel)");
        }
        for panel in &self.panels {
            if panel.series.is_empty() {
                bail!("chart '{t}': the {} panel has no series", panel.y_label);
            }
            for s in &panel.series {
                if s.points.is_empty() {
                    bail!("chart '{t}': series '{}' has no points", s.name);
                }
                for (i, &(x, y)) in s.points.iter().enumerate() {
                    let at = format!("chart '{t}': series '{}' point {i} ({x}, {y})", s.name);
                    if !(x.is_finite() && y.is_finite()) {
                        bail!("{at} is not finite");
                    }
                    if self.x_scale.is_log() && x <= 0.0 {
                        bail!("{at}: {} must be > 0 on a log axis", self.x_label);
                    }
                    if panel.y_scale.is_log() && y <= 0.0 {
                        bail!("{at}: {} must be > 0 on a log axis", panel.y_label);
                    }
                }
            }
        }
        Ok(())
    }

    /// The chart as RGB pixels (row-major, 3 bytes each) and where its
    /// parts lie.
    pub fn render(&self) -> Result<(Vec<u8>, Layout)> {
        self.check()?;
        register_font()?;
        self.draw()
            .with_context(|| format!("drawing the chart '{}'", self.title))
    }

    fn draw(&self) -> Result<(Vec<u8>, Layout)> {
        let legend_font = (FONT, 14).into_font();
        // The legend column's width from the longest name, measured in the font.
        let mut name_width = 0u32;
        for name in self.panels.iter().flat_map(|p| &p.series).map(|s| &s.name) {
            let (w, _) = legend_font.box_size(name)?;
            name_width = name_width.max(w);
        }
        let legend_width = name_width.min(MAX_NAME_WIDTH) + SWATCH as u32 + 24;
        let width = PLOT_WIDTH + legend_width;
        let height = TOP_PANEL_HEIGHT + LOWER_PANEL_HEIGHT * (self.panels.len() as u32 - 1);
        let mut rgb = vec![255u8; width as usize * height as usize * 3];
        let mut layout = Layout {
            width,
            height,
            plots: Vec::new(),
            legend: Vec::new(),
        };
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            let body = root.titled(&self.title, (FONT, 20).into_font())?;
            let (plots, legend) = body.split_horizontally(PLOT_WIDTH);
            let xs = self.panels.iter().flat_map(|p| &p.series);
            let (lo, hi) = min_max(xs.flat_map(|s| s.points.iter().map(|p| p.0)));
            let x_axis = Axis::new(self.x_scale, lo, hi);
            let title_height = height - plots.dim_in_pixel().1;
            let mut rest = plots;
            let mut first_colour = 0;
            for (i, panel) in self.panels.iter().enumerate() {
                let last = i + 1 == self.panels.len();
                let area = if last {
                    rest.clone()
                } else {
                    let own = if i == 0 {
                        TOP_PANEL_HEIGHT - title_height
                    } else {
                        LOWER_PANEL_HEIGHT
                    };
                    let (a, b) = rest.split_vertically(own);
                    rest = b;
                    a
                };
                let x_label = last.then_some(self.x_label.as_str());
                let plot = draw_panel(&area, panel, &x_axis, x_label, first_colour)?;
                layout.plots.push(plot);
                let entries = draw_legend(&legend, panel, plot.y0, first_colour)?;
                layout.legend.extend(entries);
                first_colour += panel.series.len();
            }
            root.present()?;
        }
        Ok((rgb, layout))
    }
}

/// The smallest and largest of `values` (checked non-empty and finite).
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult<T> = std::result::Result<
    T,
    DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>,
>;

/// Draws one panel's axes, grid and lines; returns its plotting area.
fn draw_panel(
    area: &Area,
    panel: &Panel,
    x_axis: &Axis,
    x_label: Option<&str>,
    first_colour: usize,
) -> DrawResult<Rect> {
    let (lo, hi) = min_max(
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let y_axis = Axis::new(panel.y_scale, lo, hi);
    let x_text = |v: &f64| x_axis.label(*v);
    let y_text = |v: &f64| y_axis.label(*v);
    let mut chart = ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(12)
        // The rotated y description is centred on the area's edge: room for it.
        .margin_left(12)
        .x_label_area_size(if x_label.is_some() { 44 } else { 24 })
        .y_label_area_size(72)
        .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x_axis.ticks().len())
        .y_labels(y_axis.ticks().len())
        .x_label_formatter(&x_text)
        .y_label_formatter(&y_text)
        .y_desc(panel.y_label.as_str())
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(238, 238, 238));
    if let Some(label) = x_label {
        mesh.x_desc(label);
    }
    mesh.draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let c = colour(first_colour + i);
        chart.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))?;
        // Markers show where the measurements are when there are few.
        if s.points.len() <= 40 {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
    }
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    Ok(Rect {
        x0: xs.start,
        y0: ys.start,
        x1: xs.end,
        y1: ys.end,
    })
}

/// Draws `panel`'s legend entries in the legend column from pixel row
/// `top` (in image coordinates) down; returns each entry's rectangle.
fn draw_legend(
    column: &Area,
    panel: &Panel,
    top: i32,
    first_colour: usize,
) -> DrawResult<Vec<Rect>> {
    let (xs, ys) = column.get_pixel_range();
    let font = (FONT, 14).into_font();
    let mut entries = Vec::new();
    for (i, s) in panel.series.iter().enumerate() {
        let c = colour(first_colour + i);
        // Rows relative to the column, as its drawing coordinates are.
        let y = top - ys.start + 4 + i as i32 * ENTRY_HEIGHT;
        let mid = y + ENTRY_HEIGHT / 2;
        column.draw(&PathElement::new(
            vec![(8, mid), (8 + SWATCH, mid)],
            c.stroke_width(2),
        ))?;
        column.draw(&Circle::new((8 + SWATCH / 2, mid), 3, c.filled()))?;
        let name = fit_text(&s.name, &font, MAX_NAME_WIDTH);
        let text = Text::new(name, (14 + SWATCH, y + 2), font.clone());
        column.draw(&text)?;
        entries.push(Rect {
            x0: xs.start + 4,
            y0: ys.start + y,
            x1: xs.end,
            y1: ys.start + y + ENTRY_HEIGHT,
        });
    }
    Ok(entries)
}

/// `text`, cut with an ellipsis to fit `max` pixels in `font`.
fn fit_text(text: &str, font: &FontDesc, max: u32) -> String {
    let fits = |t: &str| font.box_size(t).map(|(w, _)| w <= max).unwrap_or(true);
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut n = chars.len();
    while n > 0 {
        let cut: String = chars[..n].iter().collect::<String>() + "…";
        if fits(&cut) {
            return cut;
        }
        n -= 1;
    }
    "…".into()
}

/// Encodes row-major RGB pixels as a PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}
