//! The kernel regression suite: every kernel against the float64 reference
//! on seeded random inputs over a table of shapes, each output element
//! within the bound its operation's error analysis gives (`bound`),
//! outputs poisoned with NaN before each launch (an unwritten element
//! fails), each case run twice and every output compared bit for bit.
//!
//! A case's inputs come from the suite seed and its group's name alone
//! (`Rng::named`), so a case run alone (`Selection`) sees the same numbers
//! as in the whole suite. `dae check`, the GPU tests, the emulator tests
//! and the host-side bound sweep run these.

pub mod bound;
mod cases;
pub mod golden;

pub use bound::{Bound, Mismatch, Verdict};
pub use cases::{groups, shapes, Group};
pub use golden::{GoldenVerdict, Goldens};

use crate::{fail, KernelDevice, Precision, Result};
use bound::first_bit_difference;
use std::time::Instant;

/// The suite seed when none is given (`dae check --seed N` changes it).
pub const DEFAULT_SEED: u64 = 1;

/// What names a case across runs, cards and commits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseKey {
    /// The kernel family (JUnit's classname): "gemm_fwd", "adam", "model step".
    pub family: &'static str,
    /// The case itself: "gemm_fwd relu", "adam m (t=3)", "step dW dense_1".
    pub name: String,
    pub precision: &'static str,
    /// Dimensions joined by '×': "256×128×784", "1000".
    pub shape: String,
}

impl CaseKey {
    pub fn new(family: &'static str, name: impl Into<String>, p: Precision, shape: String) -> Self {
        CaseKey {
            family,
            name: name.into(),
            precision: p.name(),
            shape,
        }
    }

    /// "gemm_fwd relu [fp32] 256×128×784": unique within a suite.
    pub fn id(&self) -> String {
        format!("{} [{}] {}", self.name, self.precision, self.shape)
    }
}

/// A case that ran: its bound and how the output met it.
#[derive(Clone, Debug)]
pub struct Checked {
    pub bound: Bound,
    pub verdict: Verdict,
    /// Where the two runs' bits first differ (None: identical).
    pub bits_differ_at: Option<usize>,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Checked(Checked),
    Skipped(String),
}

/// One case of the suite.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub key: CaseKey,
    /// How the kernels ran it on this device ("split-K×25", "fused"), which
    /// depends on the SM count; not part of the key.
    pub path: String,
    pub outcome: Outcome,
    /// Wall time of the case's two runs and checks (host clock: for the
    /// JUnit report, not a benchmark).
    pub seconds: f64,
    /// The op's device time (`dae check --bench`).
    pub timing: Option<Timing>,
    /// The first run's bits against the emulator's (`golden`), where the
    /// case has a golden that applies.
    pub golden: Option<GoldenVerdict>,
}

/// One op timed with device events.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Median milliseconds per launch.
    pub ms: f64,
    pub flops: f64,
    /// Minimum device-memory traffic: each input read once, each output
    /// written once.
    pub bytes: f64,
    /// The product's precision (None: a CUDA-core op).
    pub precision: Option<Precision>,
}

impl CaseResult {
    pub fn checked(&self) -> Option<&Checked> {
        match &self.outcome {
            Outcome::Checked(c) => Some(c),
            Outcome::Skipped(_) => None,
        }
    }

    pub fn skipped(&self) -> bool {
        self.checked().is_none()
    }

    pub fn passed(&self) -> bool {
        self.checked()
            .is_some_and(|c| c.verdict.passed() && c.bits_differ_at.is_none())
            && !self.differs_from_golden()
    }

    /// The failure class of its own: within its bound, but not the
    /// emulator's bits where they should be the same.
    pub fn differs_from_golden(&self) -> bool {
        matches!(self.golden, Some(GoldenVerdict::Differs { .. }))
    }

    pub fn failed(&self) -> bool {
        !self.skipped() && !self.passed()
    }

    /// |got − want| / allowed at its largest, for drift reports.
    pub fn worst(&self) -> Option<f64> {
        self.checked().map(|c| c.verdict.worst)
    }

    /// The table header matching `row`.
    pub fn header() -> String {
        format!(
            "{:<5} {:<40} {:<5} {:<14} {:<12} {:>9} {:<30} twice",
            "", "case", "prec", "shape", "path", "err/bound", "bound"
        )
    }

    /// One line of the suite's table: status, key, path, the worst
    /// error/bound, the bound and whether the two runs agree.
    pub fn row(&self) -> String {
        let status = if self.skipped() {
            "skip"
        } else if self.passed() {
            "ok"
        } else {
            "FAIL"
        };
        let (worst, bound, twice) = match self.checked() {
            None => ("-".to_string(), String::new(), String::new()),
            Some(k) => (
                format!("{:.3}", k.verdict.worst),
                k.bound.describe(),
                match k.bits_differ_at {
                    None => "same bits".to_string(),
                    Some(i) => format!("BITS DIFFER at {i}"),
                } + match &self.golden {
                    Some(GoldenVerdict::Same) => ", = golden",
                    Some(GoldenVerdict::Differs { .. }) => ", GOLDEN DIFFERS",
                    None => "",
                },
            ),
        };
        format!(
            "{status:<5} {:<40} {:<5} {:<14} {:<12} {worst:>9} {bound:<30} {twice}",
            self.key.name, self.key.precision, self.key.shape, self.path
        )
    }

    /// A failing case's mismatches, one per line (empty when none).
    pub fn mismatch_lines(&self) -> Vec<String> {
        let Some(k) = self.checked() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        if let Some(GoldenVerdict::Differs {
            count,
            first,
            got,
            golden,
        }) = &self.golden
        {
            lines.push(format!(
                "{count} elements differ from the emulator's golden bits; first at {first}: got {got:e} ({:#010x}), golden {golden:e} ({:#010x})",
                got.to_bits(),
                golden.to_bits()
            ));
        }
        let v = &k.verdict;
        if v.violations == 0 {
            return lines;
        }
        lines.extend([
            format!(
                "{} of {} elements outside {} [{}]:",
                v.violations,
                v.elements,
                k.bound.describe(),
                k.bound.rule
            ),
            format!(
                "{:>9} {:>6} {:>6} {:>14} {:>14} {:>10} {:>10}",
                "index", "row", "col", "got", "want", "|diff|", "allowed"
            ),
        ]);
        lines.extend(v.mismatches.iter().map(|m| {
            format!(
                "{:>9} {:>6} {:>6} {:>14.7e} {:>14.7e} {:>10.3e} {:>10.3e}",
                m.index, m.row, m.col, m.got, m.want, m.diff, m.allowed
            )
        }));
        lines
    }

    pub fn skip(key: CaseKey, why: &str) -> Self {
        CaseResult {
            key,
            path: String::new(),
            outcome: Outcome::Skipped(why.to_string()),
            seconds: 0.0,
            timing: None,
            golden: None,
        }
    }

    pub fn timed(mut self, timing: Option<Timing>) -> Self {
        self.timing = timing;
        self
    }

    /// A case from its two runs' outputs against the reference.
    #[allow(clippy::too_many_arguments)]
    pub fn from_runs<T: bytemuck::Pod + Into<f64>>(
        key: CaseKey,
        path: String,
        bound: Bound,
        runs: [&[T]; 2],
        want: &[f64],
        scale: Option<&[f64]>,
        cols: usize,
        started: Instant,
    ) -> Self {
        let verdict = bound::verify(runs[0], want, scale, cols, &bound);
        CaseResult {
            key,
            path,
            outcome: Outcome::Checked(Checked {
                bound,
                verdict,
                bits_differ_at: first_bit_difference(runs[0], runs[1]),
            }),
            seconds: started.elapsed().as_secs_f64(),
            timing: None,
            golden: None,
        }
    }
}

/// Which cases to run: all by default.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// A substring of the case name, or a glob over the whole name when it
    /// holds '*'; alternatives joined by '|'.
    pub case: Option<String>,
    pub precision: Option<Precision>,
    /// Normalised by `parse_shape`.
    pub shape: Option<String>,
}

impl Selection {
    pub fn matches(&self, key: &CaseKey) -> bool {
        self.case
            .as_deref()
            .is_none_or(|pat| name_matches(pat, &key.name))
            && self.precision.is_none_or(|p| p.name() == key.precision)
            && self.shape.as_deref().is_none_or(|s| s == key.shape)
    }

    pub fn is_everything(&self) -> bool {
        self.case.is_none() && self.precision.is_none() && self.shape.is_none()
    }
}

/// "256x128x784" (or with '×') as a case's shape text; positive dimensions only.
pub fn parse_shape(text: &str) -> Result<String> {
    let dims: Vec<&str> = text.split(['x', 'X', '×']).collect();
    let valid = dims.iter().all(|d| {
        !d.is_empty()
            && d.bytes().all(|b| b.is_ascii_digit())
            && d.parse::<u64>().is_ok_and(|v| v > 0)
    });
    if !valid {
        fail!(Input, "malformed --shape '{text}': expected positive dimensions joined by 'x', e.g. 256x128x784 (M×N×K) or 1000");
    }
    Ok(dims
        .iter()
        .map(|d| d.trim_start_matches('0'))
        .collect::<Vec<_>>()
        .join("×"))
}

/// `pattern` against `name`: alternatives joined by '|', each matching any
/// name containing it or, with '*' (any run of characters), the whole name.
fn name_matches(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| alternative_matches(alt, name))
}

fn alternative_matches(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

/// How to run the suite beyond the selection.
#[derive(Default)]
pub struct Options<'a> {
    /// Also time each case's op on the device.
    pub bench: bool,
    /// Compare the golden cases with these (given only where they apply to
    /// the device's SM count and the seed).
    pub goldens: Option<&'a Goldens>,
    /// Keep the golden cases' first-run outputs, for a new goldens file.
    pub record: bool,
}

/// What a run of the suite gives.
pub struct SuiteRun {
    pub results: Vec<CaseResult>,
    /// (case id, first run's output) of the golden cases, when recording.
    pub recorded: Vec<(String, Vec<f32>)>,
}

/// Runs the selected cases of `groups` on `dev` under `seed`.
pub fn run_groups<D: KernelDevice>(
    dev: &D,
    seed: u64,
    groups: &[Group],
    sel: &Selection,
) -> Result<Vec<CaseResult>> {
    Ok(run_groups_with(dev, seed, groups, sel, &Options::default())?.results)
}

pub fn run_groups_with<D: KernelDevice>(
    dev: &D,
    seed: u64,
    groups: &[Group],
    sel: &Selection,
    opts: &Options,
) -> Result<SuiteRun> {
    let c = cases::Checker::new(dev, seed, sel, false, opts);
    for g in groups {
        c.group(g)?;
    }
    Ok(c.into_run())
}

/// The keys of every case in `groups` (nothing runs).
pub fn list_groups<D: KernelDevice>(dev: &D, groups: &[Group]) -> Vec<CaseKey> {
    let all = Selection::default();
    let c = cases::Checker::new(dev, DEFAULT_SEED, &all, true, &Options::default());
    for g in groups {
        // Listing launches nothing and cannot fail.
        c.group(g).expect("listing runs no kernel");
    }
    c.into_run().results.into_iter().map(|r| r.key).collect()
}

/// The whole kernel table (`large`: with the 65,536-row products; without,
/// those are reported as skipped).
pub fn kernel_cases<D: KernelDevice>(
    dev: &D,
    seed: u64,
    sel: &Selection,
    large: bool,
) -> Result<Vec<CaseResult>> {
    Ok(kernel_cases_with(dev, seed, sel, large, &Options::default())?.results)
}

pub fn kernel_cases_with<D: KernelDevice>(
    dev: &D,
    seed: u64,
    sel: &Selection,
    large: bool,
    opts: &Options,
) -> Result<SuiteRun> {
    let (run, skip): (Vec<Group>, Vec<Group>) =
        groups().into_iter().partition(|g| large || !g.is_large());
    let mut out = run_groups_with(dev, seed, &run, sel, opts)?;
    out.results.extend(
        list_groups(dev, &skip)
            .into_iter()
            .filter(|k| sel.matches(k))
            .map(|k| CaseResult::skip(k, "65,536-row product: not run with --quick")),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, p: Precision, shape: &str) -> CaseKey {
        CaseKey::new("gemm_fwd", name, p, shape.into())
    }

    #[test]
    fn selections_match_name_precision_and_shape() {
        let k = key("gemm_fwd relu", Precision::Tf32, "256×128×784");
        let sel = |case: Option<&str>, p, shape: Option<&str>| Selection {
            case: case.map(String::from),
            precision: p,
            shape: shape.map(|s| parse_shape(s).unwrap()),
        };
        assert!(sel(None, None, None).matches(&k));
        assert!(sel(Some("relu"), None, None).matches(&k));
        assert!(sel(
            Some("gemm_*relu"),
            Some(Precision::Tf32),
            Some("256x128x784")
        )
        .matches(&k));
        assert!(sel(Some("*"), None, None).matches(&k));
        assert!(!sel(Some("gemm_dx*"), None, None).matches(&k));
        assert!(!sel(Some("relu*x"), None, None).matches(&k));
        assert!(sel(Some("adam|gemm_fwd"), None, None).matches(&k));
        assert!(!sel(Some("adam|bias_grad"), None, None).matches(&k));
        assert!(!sel(Some("adam|"), None, None).matches(&k));
        assert!(!sel(None, Some(Precision::Bf16), None).matches(&k));
        assert!(!sel(None, None, Some("256x128x78")).matches(&k));
    }

    /// Every case of the suite has its own key (reports and goldens are
    /// keyed by it).
    #[test]
    fn case_keys_are_unique() {
        let keys = list_groups(&crate::HostDevice::new(132), &groups());
        let mut ids: Vec<String> = keys.iter().map(CaseKey::id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate case keys");
        assert!(n > 350, "{n} cases");
    }

    #[test]
    fn shapes_are_parsed_strictly() {
        assert_eq!(parse_shape("256x128x784").unwrap(), "256×128×784");
        assert_eq!(parse_shape("1000").unwrap(), "1000");
        assert_eq!(parse_shape("16×034").unwrap(), "16×34");
        for bad in ["", "x", "256x", "0x3", "a", "3x-1", "1.5", "256 x 128"] {
            let err = parse_shape(bad).unwrap_err().to_string();
            assert!(err.contains("malformed --shape"), "{bad}: {err}");
        }
    }
}
