//! Per-element error bounds and their verification: each case states
//! `|got − want| ≤ abs + rel·scale_i`, where `scale_i` is the element's
//! magnitude from the operation's error analysis (|want| for elementwise
//! ops, Σ|a·b| for a dot product), and a failure lists the elements that
//! break it, as llm.c's `validate_result` does.

/// fp32's unit roundoff, 2⁻²⁴.
pub const U32: f64 = 1.0 / 16_777_216.0;

/// How many mismatches a failing case reports.
pub const MAX_MISMATCHES: usize = 10;

#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub abs: f64,
    pub rel: f64,
    /// What `rel` multiplies, per element (e.g. "Σ|x·w|+|b|"), or, when
    /// `normwise`, "‖want‖₂".
    pub scale: &'static str,
    /// How the numbers follow from the operation (e.g. "(K+2)·u32, K=784").
    pub rule: String,
    /// ‖got − want‖₂ ≤ rel·‖want‖₂ over the whole output instead (the
    /// model-level cases, whose per-element error has no closed form).
    pub normwise: bool,
}

impl Bound {
    /// Bit-exact: the same operations in the same order as the reference.
    pub fn exact(rule: &str) -> Bound {
        Bound::elementwise(0.0, 0.0, "|want|", rule.to_string())
    }

    pub fn elementwise(abs: f64, rel: f64, scale: &'static str, rule: String) -> Bound {
        Bound {
            abs,
            rel,
            scale,
            rule,
            normwise: false,
        }
    }

    pub fn normwise(rel: f64, rule: String) -> Bound {
        Bound {
            abs: 0.0,
            rel,
            scale: "‖want‖₂",
            rule,
            normwise: true,
        }
    }

    /// One line: "≤ 4.7e-05·Σ|x·w|+|b|".
    pub fn describe(&self) -> String {
        match (self.abs, self.rel) {
            (0.0, 0.0) => "exact".to_string(),
            (0.0, r) => format!("≤ {r:.1e}·{}", self.scale),
            (a, 0.0) => format!("≤ {a:.1e}"),
            (a, r) => format!("≤ {a:.1e} + {r:.1e}·{}", self.scale),
        }
    }
}

/// One element outside its bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub index: usize,
    pub row: usize,
    pub col: usize,
    pub got: f64,
    pub want: f64,
    /// |got − want| (infinite when got is not finite).
    pub diff: f64,
    /// What this element was allowed.
    pub allowed: f64,
}

/// The outcome of checking one output against its reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The largest |got − want| / allowed: ≤ 1 passes; infinite on any
    /// non-finite output (an unwritten, NaN-poisoned element).
    pub worst: f64,
    pub max_abs_diff: f64,
    pub elements: usize,
    /// Elements outside their bound.
    pub violations: usize,
    /// The first `MAX_MISMATCHES` of them, in index order (normwise: the
    /// largest differences).
    pub mismatches: Vec<Mismatch>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.worst <= 1.0 && self.violations == 0
    }
}

fn diff_of(got: f64, want: f64) -> f64 {
    if got.is_finite() {
        (got - want).abs()
    } else {
        f64::INFINITY
    }
}

/// Whether `diff` is within `allowed` (false for NaN).
fn within(diff: f64, allowed: f64) -> bool {
    diff <= allowed
}

fn ratio(diff: f64, allowed: f64) -> f64 {
    if diff <= allowed {
        if allowed > 0.0 {
            diff / allowed
        } else {
            0.0
        }
    } else if allowed > 0.0 {
        diff / allowed
    } else {
        f64::INFINITY
    }
}

/// Checks `got` against `want` under `bound`; `scale` gives each element's
/// magnitude (None: |want|); `cols` is the output's row length, for the
/// row and column of a mismatch.
pub fn verify<T: Copy + Into<f64>>(
    got: &[T],
    want: &[f64],
    scale: Option<&[f64]>,
    cols: usize,
    bound: &Bound,
) -> Verdict {
    assert_eq!(got.len(), want.len(), "output and reference lengths differ");
    if let Some(s) = scale {
        assert_eq!(s.len(), want.len(), "scale and reference lengths differ");
    }
    let got: Vec<f64> = got.iter().map(|&g| g.into()).collect();
    let got = &got[..];
    let cols = cols.max(1);
    let at = |i: usize, allowed: f64| Mismatch {
        index: i,
        row: i / cols,
        col: i % cols,
        got: got[i],
        want: want[i],
        diff: diff_of(got[i], want[i]),
        allowed,
    };
    let max_abs_diff = (0..got.len())
        .map(|i| diff_of(got[i], want[i]))
        .fold(0.0, f64::max);
    if bound.normwise {
        return verify_normwise(got, want, bound, max_abs_diff, at);
    }
    let mut v = Verdict {
        worst: 0.0,
        max_abs_diff,
        elements: got.len(),
        violations: 0,
        mismatches: Vec::new(),
    };
    for i in 0..got.len() {
        let magnitude = scale.map_or(want[i].abs(), |s| s[i]);
        let allowed = bound.abs + bound.rel * magnitude;
        let d = diff_of(got[i], want[i]);
        v.worst = v.worst.max(ratio(d, allowed));
        if !within(d, allowed) {
            v.violations += 1;
            if v.mismatches.len() < MAX_MISMATCHES {
                v.mismatches.push(at(i, allowed));
            }
        }
    }
    v
}

fn verify_normwise(
    got: &[f64],
    want: &[f64],
    bound: &Bound,
    max_abs_diff: f64,
    at: impl Fn(usize, f64) -> Mismatch,
) -> Verdict {
    let norm = |f: &dyn Fn(usize) -> f64| (0..got.len()).map(|i| f(i) * f(i)).sum::<f64>().sqrt();
    let d = norm(&|i| diff_of(got[i], want[i]));
    let w = norm(&|i| want[i]);
    let worst = ratio(d, bound.rel * w);
    // The per-element share of the bound, for the listing: rel·rms(want).
    let share = bound.rel * w / (got.len().max(1) as f64).sqrt();
    let (violations, mismatches) = if worst <= 1.0 {
        (0, Vec::new())
    } else {
        let mut order: Vec<usize> = (0..got.len()).collect();
        order.sort_by(|&a, &b| diff_of(got[b], want[b]).total_cmp(&diff_of(got[a], want[a])));
        let over = order
            .iter()
            .filter(|&&i| !within(diff_of(got[i], want[i]), share))
            .count();
        let listed = order
            .into_iter()
            .take(MAX_MISMATCHES)
            .map(|i| at(i, share))
            .collect();
        (over.max(1), listed)
    };
    Verdict {
        worst,
        max_abs_diff,
        elements: got.len(),
        violations,
        mismatches,
    }
}

/// The first index where two runs' bits differ.
pub fn first_bit_difference<T: bytemuck::Pod>(a: &[T], b: &[T]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter()
        .zip(b)
        .position(|(x, y)| bytemuck::bytes_of(x) != bytemuck::bytes_of(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_outside_the_bound_are_listed_with_row_and_column() {
        let b = Bound::elementwise(0.0, 0.1, "|want|", "test".into());
        let want = [1.0, 2.0, -3.0, 0.0, 5.0, 6.0];
        let got = [1.05, 2.5, -3.0, f32::NAN, 5.0, 6.0];
        let v = verify(&got, &want, None, 3, &b);
        assert!(!v.passed());
        assert_eq!(v.violations, 2);
        assert_eq!(v.worst, f64::INFINITY);
        let m: Vec<_> = v
            .mismatches
            .iter()
            .map(|m| (m.index, m.row, m.col))
            .collect();
        assert_eq!(m, vec![(1, 0, 1), (3, 1, 0)]);
        assert!((v.mismatches[0].allowed - 0.2).abs() < 1e-12);
        let ok = verify(&[1.05, 2.1], &[1.0, 2.0], None, 2, &b);
        assert!(ok.passed() && (ok.worst - 0.5).abs() < 1e-6, "{ok:?}");
    }

    #[test]
    fn exact_bounds_fail_any_difference_and_scales_replace_want() {
        let e = Bound::exact("same ops");
        assert!(verify(&[0.5], &[0.5], None, 1, &e).passed());
        let v = verify(&[0.5], &[0.5000001], None, 1, &e);
        assert_eq!((v.passed(), v.worst), (false, f64::INFINITY));
        // A dot product cancelling to 0 is judged against Σ|a·b|, not |want|.
        let b = Bound::elementwise(0.0, 1e-3, "Σ|a·b|", "test".into());
        assert!(verify(&[1e-4], &[0.0], Some(&[1.0]), 1, &b).passed());
        assert!(!verify(&[1e-2], &[0.0], Some(&[1.0]), 1, &b).passed());
    }

    #[test]
    fn normwise_bounds_list_the_largest_differences() {
        let b = Bound::normwise(0.01, "test".into());
        let want = [1.0, 1.0, 1.0, 1.0];
        assert!(verify(&[1.001, 0.999, 1.0, 1.0], &want, None, 4, &b).passed());
        let v = verify(&[1.0, 1.5, 1.0, 0.9], &want, None, 2, &b);
        assert!(!v.passed());
        assert_eq!(v.mismatches[0].index, 1);
        assert_eq!((v.mismatches[1].row, v.mismatches[1].col), (1, 1));
    }

    #[test]
    fn bit_differences_are_located() {
        assert_eq!(first_bit_difference(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(first_bit_difference(&[1.0, 0.0], &[1.0, -0.0]), Some(1));
        assert_eq!(first_bit_difference(&[f32::NAN], &[f32::NAN]), None);
    }
}
