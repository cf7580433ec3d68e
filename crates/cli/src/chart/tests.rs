//! Each chart kind rendered to a PNG file, decoded, and its pixels checked:
//! size, each series' line in its panel, legends beside (not over) lines,
//! and bad input refused with a message instead of a panic.

use super::*;

/// A decoded RGB image.
struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let bytes = std::fs::read(path).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn at(&self, x: i32, y: i32) -> RGBColor {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        RGBColor(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }

    /// Pixels of exactly colour `c` inside `r`.
    fn count(&self, c: RGBColor, r: &Rect) -> usize {
        (r.y0..r.y1)
            .flat_map(|y| (r.x0..r.x1).map(move |x| (x, y)))
            .filter(|&(x, y)| self.at(x, y) == c)
            .count()
    }

    fn whole(&self) -> Rect {
        Rect {
            x0: 0,
            y0: 0,
            x1: self.width as i32,
            y1: self.height as i32,
        }
    }
}

/// Renders `chart` through `render_png` and reads the file back.
fn rendered(chart: &LineChart) -> (Image, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chart.png");
    chart.render_png(&path).unwrap();
    let image = Image::read(&path);
    let (_, layout) = chart.render().unwrap();
    assert_eq!((image.width, image.height), (layout.width, layout.height));
    (image, layout)
}

/// Checks what every chart must show: each series drawn in its panel's
/// plot (at least `min_pixels` of its colour), its legend entry beside the
/// plots carrying its colour, and no series colour anywhere else.
fn check_series_and_legends(chart: &LineChart, image: &Image, layout: &Layout, min_pixels: usize) {
    let series: Vec<(usize, &Series)> = chart
        .panels
        .iter()
        .enumerate()
        .flat_map(|(p, panel)| panel.series.iter().map(move |s| (p, s)))
        .collect();
    assert_eq!(layout.plots.len(), chart.panels.len());
    assert_eq!(layout.legend.len(), series.len());
    for (i, &(panel, s)) in series.iter().enumerate() {
        let c = colour(i);
        let in_plot = image.count(c, &layout.plots[panel]);
        assert!(
            in_plot >= min_pixels,
            "series '{}': {in_plot} line pixels",
            s.name
        );
        let entry = &layout.legend[i];
        assert!(
            image.count(c, entry) >= 10,
            "series '{}': no legend swatch",
            s.name
        );
        for plot in &layout.plots {
            assert!(
                !entry.overlaps(plot),
                "legend entry {entry:?} over plot {plot:?}"
            );
        }
        for (j, other) in layout.legend.iter().enumerate() {
            assert!(
                i == j || !entry.overlaps(other),
                "legend entries {i} and {j} overlap"
            );
        }
        // All of the colour is in its own panel or its own legend entry.
        let total = image.count(c, &image.whole());
        let own = in_plot + image.count(c, entry);
        assert_eq!(
            total, own,
            "series '{}': its colour drawn elsewhere",
            s.name
        );
    }
}

fn bench_chart() -> LineChart {
    let batches = [64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0];
    let curve = |name: &str, peak: f64| Series {
        name: name.into(),
        points: batches
            .iter()
            .map(|&b| (b, peak * b / (b + 300.0)))
            .collect(),
    };
    LineChart {
        title: "training throughput, test device".into(),
        x_label: "batch size".into(),
        x_scale: Scale::Log2,
        panels: vec![Panel {
            y_label: "samples/s".into(),
            y_scale: Scale::Log10,
            series: vec![
                curve("dae fp32", 2.0e6),
                curve("dae bf16", 4.5e6),
                curve("pytorch fp32", 6.0e5),
            ],
        }],
    }
}

#[test]
fn bench_chart_on_log_axes() {
    let chart = bench_chart();
    let (image, layout) = rendered(&chart);
    assert_eq!(layout.height, TOP_PANEL_HEIGHT);
    assert!(
        layout.width > PLOT_WIDTH + SWATCH as u32,
        "{}",
        layout.width
    );
    check_series_and_legends(&chart, &image, &layout, 300);
    // The log axes put a doubling of the batch at an even step: the
    // markers' centres (where the first series is) are evenly spaced.
    let plot = layout.plots[0];
    let c = colour(0);
    let columns: Vec<i32> = (plot.x0..plot.x1)
        .filter(|&x| (plot.y0..plot.y1).filter(|&y| image.at(x, y) == c).count() >= 6)
        .collect();
    let mut centres = Vec::new();
    for run in columns.chunk_by(|a, b| b - a == 1) {
        centres.push((run[0] + run[run.len() - 1]) / 2);
    }
    assert_eq!(centres.len(), 7, "marker columns {columns:?}");
    let gaps: Vec<i32> = centres.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (g - gaps[0]).abs() <= 2), "{gaps:?}");
}

#[test]
fn a_line_through_the_upper_right_stays_visible() {
    // Rising to the top-right corner: where a legend inside the plot sits.
    let chart = LineChart {
        title: "validation loss".into(),
        x_label: "epoch".into(),
        x_scale: Scale::Linear,
        panels: vec![Panel {
            y_label: "val_loss".into(),
            y_scale: Scale::Linear,
            series: vec![
                Series {
                    name: "a model with a long name, 784-512-256-128-64-32".into(),
                    points: (1..=50).map(|e| (f64::from(e), f64::from(e))).collect(),
                },
                Series {
                    name: "flat".into(),
                    points: (1..=50).map(|e| (f64::from(e), 25.0)).collect(),
                },
            ],
        }],
    };
    let (image, layout) = rendered(&chart);
    check_series_and_legends(&chart, &image, &layout, 500);
    let p = layout.plots[0];
    let corner = Rect {
        x0: p.x1 - (p.x1 - p.x0) / 5,
        y0: p.y0,
        x1: p.x1,
        y1: p.y0 + (p.y1 - p.y0) / 5,
    };
    assert!(image.count(colour(0), &corner) >= 50);
    // The long name is cut to fit, not run off the image.
    assert!(layout.width <= PLOT_WIDTH + MAX_NAME_WIDTH + SWATCH as u32 + 24);
}

#[test]
fn history_chart_with_a_per_step_learning_rate_panel() {
    let epochs = 12;
    let loss: Vec<f64> = (0..epochs).map(|e| 0.3 / (1.0 + f64::from(e))).collect();
    let val: Vec<f64> = loss.iter().map(|l| l * 1.1).collect();
    // Warm-up then cosine decay over 5 steps per epoch, ending at 0.
    let steps = 5 * epochs as usize;
    let lr: Vec<f64> = (0..steps)
        .map(|s| {
            let t = s as f64 / (steps - 1) as f64;
            1e-3 * (t * 10.0).min(1.0) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        })
        .collect();
    let chart = history_chart("training history, test", &loss, &val, Some(&lr)).unwrap();
    assert_eq!(chart.panels[1].y_scale, Scale::Linear, "lr reaches 0");
    let (image, layout) = rendered(&chart);
    assert_eq!(layout.height, TOP_PANEL_HEIGHT + LOWER_PANEL_HEIGHT);
    check_series_and_legends(&chart, &image, &layout, 200);
    let (top, bottom) = (layout.plots[0], layout.plots[1]);
    assert!(top.y1 <= bottom.y0, "panels overlap: {top:?} {bottom:?}");
    assert_eq!((top.x0, top.x1), (bottom.x0, bottom.x1), "x axes differ");
    // Both panels span the same epochs: the lr's last step is at the last epoch.
    let last = chart.panels[1].series[0].points.last().unwrap().0;
    assert_eq!(last, f64::from(epochs));

    // Without lr: one panel; a per-epoch lr spanning decades goes on a log axis.
    assert_eq!(
        history_chart("h", &loss, &val, None).unwrap().panels.len(),
        1
    );
    let decayed: Vec<f64> = (0..epochs).map(|e| 10f64.powi(-e / 3)).collect();
    let c = history_chart("h", &loss, &val, Some(&decayed)).unwrap();
    assert_eq!(c.panels[1].y_scale, Scale::Log10);
    assert_eq!(c.panels[1].series[0].points[0], (1.0, 1.0));
}

#[test]
fn bad_input_is_refused_with_the_reason_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let with = |edit: &dyn Fn(&mut LineChart)| {
        let mut c = bench_chart();
        edit(&mut c);
        c.render_png(&path).unwrap_err().to_string()
    };
    let cases: Vec<(String, &[&str])> = vec![
        (with(&|c| c.panels.clear()), &["no panel"]),
        (
            with(&|c| c.panels[0].series.clear()),
            &["samples/s panel has no series"],
        ),
        (
            with(&|c| c.panels[0].series[1].points.clear()),
            &["'dae bf16' has no points"],
        ),
        (
            with(&|c| c.panels[0].series[0].points[2].1 = f64::NAN),
            &["'dae fp32' point 2", "not finite"],
        ),
        (
            with(&|c| c.panels[0].series[2].points[0].0 = f64::INFINITY),
            &["'pytorch fp32' point 0", "not finite"],
        ),
        (
            with(&|c| c.panels[0].series[0].points[3].1 = 0.0),
            &["point 3", "samples/s must be > 0 on a log axis"],
        ),
        (
            with(&|c| c.panels[0].series[1].points[0].0 = -64.0),
            &["'dae bf16' point 0", "batch size must be > 0 on a log axis"],
        ),
    ];
    for (message, needles) in cases {
        for n in needles {
            assert!(message.contains(n), "{message:?} lacks {n:?}");
        }
        assert!(message.contains("training throughput"), "{message}");
    }
    assert!(!path.exists());
    // Zero and negative values are fine on a linear axis.
    let mut linear = bench_chart();
    linear.panels[0].y_scale = Scale::Linear;
    linear.panels[0].series[0].points[0].1 = -5.0;
    linear.render().unwrap();

    let e = |r: Result<LineChart>| r.err().unwrap().to_string();
    assert!(e(history_chart("h", &[0.3], &[], None)).contains("1 loss values but 0 val_loss"));
    let lr_error = e(history_chart(
        "h",
        &[0.3, 0.2],
        &[0.3, 0.2],
        Some(&[1.0; 3]),
    ));
    assert!(
        lr_error.contains("3 learning rates for 2 epochs"),
        "{lr_error}"
    );
    assert!(e(history_chart("h", &[], &[], Some(&[]))).contains("0 learning rates"));
    // An empty history (no epoch yet) is a chart of nothing: refused, not drawn.
    let empty = history_chart("h", &[], &[], None).unwrap();
    assert!(empty
        .render()
        .unwrap_err()
        .to_string()
        .contains("'loss' has no points"));
}

#[test]
fn extreme_but_valid_values_render() {
    let one = |x_scale, y_scale, points: Vec<(f64, f64)>| LineChart {
        title: "extreme".into(),
        x_label: "x".into(),
        x_scale,
        panels: vec![Panel {
            y_label: "y".into(),
            y_scale,
            series: vec![Series {
                name: "s".into(),
                points,
            }],
        }],
    };
    let cases = [
        one(Scale::Linear, Scale::Linear, vec![(1.0, 0.5)]),
        one(
            Scale::Log2,
            Scale::Log10,
            vec![(1e-300, 1e-300), (1e300, 1e300)],
        ),
        one(Scale::Log2, Scale::Log10, vec![(7.0, 3.0), (7.0, 3.0)]),
        one(
            Scale::Linear,
            Scale::Linear,
            vec![(-f64::MAX, f64::MAX), (f64::MAX, -f64::MAX)],
        ),
        one(
            Scale::Linear,
            Scale::Linear,
            vec![(1.0, 1e6), (2.0, 1e6 + 1e-6)],
        ),
    ];
    for (i, chart) in cases.iter().enumerate() {
        let (rgb, layout) = chart.render().unwrap_or_else(|e| panic!("case {i}: {e:#}"));
        assert_eq!(rgb.len(), (layout.width * layout.height * 3) as usize);
        let drawn = rgb.chunks(3).filter(|p| *p == [0, 114, 178]).count();
        assert!(drawn > 0, "case {i}: the series is not drawn");
    }
}
