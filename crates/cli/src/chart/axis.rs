//! A chart axis: its scale, the range drawn (the data's, padded), round
//! tick values and their labels; a plotters coordinate so one type serves
//! linear and logarithmic axes alike.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Logarithmic, ticks at 1, 2, 5 × 10^k (or decades when it spans many).
    Log10,
    /// Logarithmic, ticks at powers of two (batch sizes).
    Log2,
}

impl Scale {
    pub fn is_log(self) -> bool {
        self != Scale::Linear
    }
}

/// Most ticks an axis gets: labels stay legible at the chart's size.
const MAX_TICKS: usize = 10;

#[derive(Clone)]
pub struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    minor: Vec<f64>,
}

impl Axis {
    /// The axis for values in `[min, max]` (finite; positive on a log
    /// scale: the caller checks).
    pub fn new(scale: Scale, min: f64, max: f64) -> Self {
        let (lo, hi) = padded(scale, min, max);
        let ticks = ticks(scale, lo, hi);
        let minor = match scale {
            Scale::Log10 if (hi / lo).log10() <= 4.0 => {
                decade_multiples(lo, hi, &[1, 2, 3, 4, 5, 6, 7, 8, 9])
            }
            _ => Vec::new(),
        };
        Axis {
            scale,
            lo,
            hi,
            ticks,
            minor,
        }
    }

    pub fn ticks(&self) -> &[f64] {
        &self.ticks
    }

    pub fn label(&self, v: f64) -> String {
        // An axis of small values labels all of its ticks alike: 0, 5e-4, 1e-3.
        let largest = self.ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
        if largest < 1e-2 && v != 0.0 {
            return format!("{:e}", round_significant(v));
        }
        tick_label(self.scale, v)
    }

    /// Where `v` lies on the axis, 0 at the low end and 1 at the high end.
    fn fraction(&self, v: f64) -> f64 {
        // Halves and logs keep the arithmetic finite across f64's range.
        match self.scale {
            Scale::Linear => (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0),
            Scale::Log10 | Scale::Log2 => (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln()),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1) - f64::from(limit.0);
        // `as` saturates: a point far off the axis lands on its edge's side.
        (f64::from(limit.0) + self.fraction(*value) * span).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// The data range with a margin so end points do not sit on the frame; a
/// single value gets a range around it. Stays finite (and positive on a log
/// scale) for any finite data.
fn padded(scale: Scale, min: f64, max: f64) -> (f64, f64) {
    let (lo, hi) = unclamped_padding(scale, min, max);
    let floor = if scale.is_log() {
        f64::MIN_POSITIVE
    } else {
        -f64::MAX
    };
    let (lo, hi) = (lo.clamp(floor, f64::MAX), hi.clamp(floor, f64::MAX));
    if lo < hi {
        (lo, hi)
    } else if scale.is_log() {
        (lo, lo * 4.0)
    } else {
        (lo, lo + 1.0)
    }
}

fn unclamped_padding(scale: Scale, min: f64, max: f64) -> (f64, f64) {
    match scale {
        Scale::Linear => {
            let span = max - min;
            if span <= max.abs().max(min.abs()) * 1e-9 {
                let half = if min == 0.0 { 1.0 } else { min.abs() * 0.05 };
                return (min - half, max + half);
            }
            // Halving first keeps the padding finite for values near f64::MAX
            // (the clamp above catches the sum).
            let pad = (max / 2.0 - min / 2.0) * 0.1;
            (min - pad, max + pad)
        }
        Scale::Log10 | Scale::Log2 => {
            let log_span = max.ln() - min.ln();
            if log_span <= 1e-9 {
                return (min / 2.0, max * 2.0);
            }
            let factor = (log_span * 0.05).exp().max(1.05);
            (min / factor, max * factor)
        }
    }
}

/// Round tick values in `[lo, hi]`, at most `MAX_TICKS`, at least two
/// where the range allows.
pub fn ticks(scale: Scale, lo: f64, hi: f64) -> Vec<f64> {
    match scale {
        Scale::Linear => linear_ticks(lo, hi),
        Scale::Log10 => {
            let fine = decade_multiples(lo, hi, &[1, 2, 5]);
            if (3..=MAX_TICKS).contains(&fine.len()) {
                return fine;
            }
            let decades = decade_multiples(lo, hi, &[1]);
            if decades.len() >= 3 {
                return thin(decades);
            }
            // Less than a decade or so: round linear steps read better.
            linear_ticks(lo, hi)
        }
        Scale::Log2 => {
            let (first, last) = (lo.log2().ceil() as i32, hi.log2().floor() as i32);
            if last - first < 1 {
                return linear_ticks(lo, hi);
            }
            thin((first..=last).map(|e| 2f64.powi(e)).collect())
        }
    }
}

/// Every `m × 10^k` in `[lo, hi]` for the given mantissas.
fn decade_multiples(lo: f64, hi: f64, mantissas: &[u32]) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for k in first..=last {
        for &m in mantissas {
            // Parsing "5e-3" gives the closest double, not 5 × 0.001's error.
            let v: f64 = format!("{m}e{k}").parse().unwrap_or(f64::NAN);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// Every n-th of `ticks` so at most `MAX_TICKS` remain.
fn thin(ticks: Vec<f64>) -> Vec<f64> {
    let every = ticks.len().div_ceil(MAX_TICKS).max(1);
    ticks.into_iter().step_by(every).collect()
}

/// Multiples of a 1, 2 or 5 × 10^k step, about five to ten of them.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi / 2.0 - lo / 2.0) / 3.0;
    if !(raw.is_finite() && raw > 0.0) {
        return Vec::new();
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    let mut out = Vec::new();
    let mut i = first;
    while i <= last && out.len() <= MAX_TICKS {
        // i × step, rounded to the step's decimals so 0.1 × 3 reads 0.3.
        out.push(round_significant(i * step));
        i += 1.0;
    }
    out
}

/// `v` to 6 significant digits: the float noise of tick arithmetic gone.
fn round_significant(v: f64) -> f64 {
    format!("{v:.5e}").parse().unwrap_or(v)
}

/// A short label: 1024 (powers of two as integers), 0.25, 200k, 1.5M, 1e-4.
pub fn tick_label(scale: Scale, v: f64) -> String {
    let v = round_significant(v);
    if scale == Scale::Log2 && (1.0..1e7).contains(&v) && v.fract() == 0.0 {
        return format!("{}", v as u64);
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e15).contains(&a) {
        return format!("{v:e}");
    }
    for (unit, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= unit {
            return format!("{}{suffix}", round_significant(v / unit));
        }
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dae_core::rng::{Purpose, Rng};

    /// The mantissa of a positive value: 2 for 2000 or 0.002.
    fn mantissa(v: f64) -> f64 {
        let text = format!("{v:.5e}");
        text.split('e').next().unwrap().parse().unwrap()
    }

    #[test]
    fn ticks_are_round_inside_the_range_and_few() {
        let seed = 12;
        let mut rng = Rng::new(seed, Purpose::Test, 0);
        for case in 0..2000 {
            let scale = [Scale::Linear, Scale::Log10, Scale::Log2][case % 3];
            // Ranges from a fraction of a unit to many decades, anywhere.
            let exp = f64::from(rng.uniform()) * 40.0 - 20.0;
            let min = 10f64.powf(exp)
                * if scale.is_log() || case % 2 == 0 {
                    1.0
                } else {
                    -1.0
                };
            let max = min + 10f64.powf(exp + f64::from(rng.uniform()) * 8.0 - 3.0);
            let axis = Axis::new(scale, min, max);
            let t = axis.ticks();
            let at = format!("seed {seed} case {case}: {scale:?} [{min}, {max}] → {t:?}");
            assert!(t.len() >= 2 && t.len() <= MAX_TICKS + 1, "{at}");
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{at}");
            assert!(t.iter().all(|&v| v >= axis.lo && v <= axis.hi), "{at}");
            // Every tick's label differs: none collapses to the same text.
            let labels: std::collections::BTreeSet<String> =
                t.iter().map(|&v| axis.label(v)).collect();
            assert_eq!(labels.len(), t.len(), "{at}: labels {labels:?}");
            let powers_of_two = t.iter().all(|v| v.log2().fract() == 0.0);
            let one_two_five = t.iter().all(|&v| [1.0, 2.0, 5.0].contains(&mantissa(v)));
            let steps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
            let even = steps
                .iter()
                .all(|s| ((s - steps[0]) / steps[0]).abs() < 1e-6)
                && [1.0, 2.0, 5.0].contains(&mantissa(steps[0]));
            match scale {
                Scale::Linear => assert!(even, "{at}"),
                Scale::Log10 => assert!(one_two_five || even, "{at}"),
                Scale::Log2 => assert!(powers_of_two || even, "{at}"),
            }
        }
    }

    #[test]
    fn typical_axes() {
        let bench = Axis::new(Scale::Log2, 64.0, 4096.0);
        assert_eq!(
            bench.ticks(),
            [64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0]
        );
        let speed = Axis::new(Scale::Log10, 3e4, 2e6);
        assert_eq!(speed.ticks(), [5e4, 1e5, 2e5, 5e5, 1e6, 2e6]);
        let labels: Vec<String> = speed.ticks().iter().map(|&v| speed.label(v)).collect();
        assert_eq!(labels, ["50k", "100k", "200k", "500k", "1M", "2M"]);
        let epochs = Axis::new(Scale::Linear, 1.0, 3.0);
        assert_eq!(epochs.ticks(), [1.0, 1.5, 2.0, 2.5, 3.0]);
        let loss = Axis::new(Scale::Linear, 0.09, 0.31);
        let labels: Vec<String> = loss.ticks().iter().map(|&v| loss.label(v)).collect();
        assert_eq!(labels, ["0.1", "0.15", "0.2", "0.25", "0.3"]);
        assert_eq!(tick_label(Scale::Log10, 1e-4), "1e-4");
        assert_eq!(tick_label(Scale::Log2, 65536.0), "65536");
        assert_eq!(tick_label(Scale::Linear, 1.5e6), "1.5M");
    }

    #[test]
    fn map_puts_ends_on_the_limits_and_log_midpoints_in_the_middle() {
        let a = Axis::new(Scale::Log10, 10.0, 1000.0);
        let (lo, hi) = (a.lo, a.hi);
        assert_eq!(a.map(&lo, (0, 500)), 0);
        assert_eq!(a.map(&hi, (0, 500)), 500);
        assert_eq!(a.map(&(lo * hi).sqrt(), (0, 500)), 250);
        let l = Axis::new(Scale::Linear, -1.0, 1.0);
        assert_eq!(l.map(&0.0, (400, 0)), 200);
    }
}
