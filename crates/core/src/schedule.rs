//! Learning-rate schedules and the batch-size scaling rule (issue 12).
//!
//! The GPU evaluates the schedule inside the optimizer kernel from the
//! device-held step counter (one recorded CUDA graph serves the whole run),
//! so the formula here is written to give the same bits in Rust and CUDA:
//! only IEEE correctly rounded f64 operations (+ − × ÷, in a fixed order,
//! never fused: Rust does not contract, the kernels use `__d*_rn`), a cosine
//! of our own (a fixed polynomial, [`cos_pi`]) instead of a libm call, and
//! one rounding to f32 at the end. kernels/lamb.cu `dae_lr_at` is the same
//! function statement by statement; crates/emu/tests/schedule.rs checks the
//! two bit for bit.
//!
//! Shape (s = the 1-based Adam step, w = warmup steps, T = total steps,
//! f = final fraction, P = peak):
//! - warmup, s ≤ w: P·(s/w), a straight line from P/w at step 1 to exactly P
//!   at step w;
//! - after it, progress p = min((s − w)/(T − w), 1) (1 for s ≥ T), so that
//!   step w is the peak and step T (and every later step) is exactly f·P:
//!   - constant: P (exactly: the lab's default history stays bit for bit),
//!   - cosine: P·(f + (1−f)·(1 + cos πp)/2),
//!   - linear: P·(f + (1−f)·(1 − p)),
//!   - one-cycle: warmup then cosine; with no warmup given, the ramp is the
//!     first 30% of T (Smith's one-cycle as PyTorch's OneCycleLR runs it,
//!     pct_start = 0.3, but starting from P/w like every warmup here rather
//!     than OneCycleLR's P/25, and ending at f·P rather than P/25/10⁴).
//!
//! When T = w the warmup's last step is the peak and every later step f·P.
//! Step 0 is not a training step (warmup gives 0 there).

use crate::{fail, Result};
use serde::{Deserialize, Serialize};

/// The shape after warmup. Stored by name ("cosine").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Cosine,
    Linear,
    OneCycle,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 4] = [
        ScheduleKind::Constant,
        ScheduleKind::Cosine,
        ScheduleKind::Linear,
        ScheduleKind::OneCycle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Linear => "linear",
            ScheduleKind::OneCycle => "onecycle",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|k| k.name() == s) {
            Some(k) => Ok(k),
            None => {
                fail!(
                    Input,
                    "unknown learning-rate schedule '{s}' (constant, cosine, linear or onecycle)"
                )
            }
        }
    }

    /// The kernels' `lr_kind` code (one-cycle runs as cosine once its
    /// warmup is resolved, see [`LrSchedule::device_args`]).
    fn device_code(self) -> i32 {
        match self {
            ScheduleKind::Constant => 0,
            ScheduleKind::Cosine | ScheduleKind::OneCycle => 1,
            ScheduleKind::Linear => 2,
        }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// One-cycle's ramp when no warmup is given: 30% of the total steps.
const ONE_CYCLE_RAMP_PERCENT: u64 = 30;

/// A learning-rate schedule over the 1-based Adam step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub kind: ScheduleKind,
    pub peak: f32,
    pub warmup_steps: u32,
    pub total_steps: u32,
    pub final_fraction: f32,
}

/// The schedule as the kernels take it (`lr_kind, lr_peak, lr_warmup,
/// lr_total, lr_final`, in this order, after the step pointer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleArgs {
    pub kind: i32,
    pub peak: f32,
    pub warmup: i32,
    pub total: i32,
    pub final_fraction: f32,
}

impl LrSchedule {
    /// The lab's default: a constant `lr`, no warmup.
    pub fn constant(lr: f32) -> Result<Self> {
        Self::new(ScheduleKind::Constant, lr, 0, 0, 1.0)
    }

    /// A checked schedule: peak finite and > 0, warmup ≤ total, final
    /// fraction in [0, 1], total within the device step counter's `int`.
    pub fn new(
        kind: ScheduleKind,
        peak: f32,
        warmup_steps: u32,
        total_steps: u32,
        final_fraction: f32,
    ) -> Result<Self> {
        let s = LrSchedule {
            kind,
            peak,
            warmup_steps,
            total_steps,
            final_fraction,
        };
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<()> {
        let name = self.kind.name();
        if !(self.peak.is_finite() && self.peak > 0.0) {
            fail!(
                Input,
                "{name} learning-rate schedule: peak learning rate {} must be finite and > 0",
                self.peak
            );
        }
        if !(0.0..=1.0).contains(&self.final_fraction) {
            fail!(
                Input,
                "{name} learning-rate schedule: final fraction {} must be in [0, 1]",
                self.final_fraction
            );
        }
        // Constant ignores total_steps unless it warms up.
        let needs_total = self.kind != ScheduleKind::Constant || self.warmup_steps > 0;
        if needs_total && self.warmup_steps > self.total_steps {
            fail!(
                Input,
                "{name} learning-rate schedule: {} warmup steps exceed the {} total steps",
                self.warmup_steps,
                self.total_steps
            );
        }
        if self.kind != ScheduleKind::Constant && self.total_steps == 0 {
            fail!(
                Input,
                "{name} learning-rate schedule needs the total steps (got 0)"
            );
        }
        if self.total_steps > i32::MAX as u32 {
            fail!(
                Input,
                "{name} learning-rate schedule: {} total steps exceed the device step counter's range ({})",
                self.total_steps,
                i32::MAX
            );
        }
        Ok(())
    }

    /// Warmup steps actually run: one-cycle's 30% ramp when none is given.
    pub fn effective_warmup(&self) -> u32 {
        if self.kind == ScheduleKind::OneCycle && self.warmup_steps == 0 {
            let ramp = self.total_steps as u64 * ONE_CYCLE_RAMP_PERCENT / 100;
            (ramp as u32).max(1).min(self.total_steps)
        } else {
            self.warmup_steps
        }
    }

    /// The learning rate of 1-based step `step`.
    pub fn lr_at(&self, step: u32) -> f32 {
        let a = self.device_args();
        lr_formula(
            a.kind,
            a.peak,
            a.warmup as u32,
            a.total as u32,
            a.final_fraction,
            step,
        )
    }

    /// The kernels' schedule arguments. Valid schedules only (`new` checks
    /// the ranges, so the casts are exact).
    pub fn device_args(&self) -> ScheduleArgs {
        ScheduleArgs {
            kind: self.kind.device_code(),
            peak: self.peak,
            warmup: self.effective_warmup() as i32,
            total: self.total_steps as i32,
            final_fraction: self.final_fraction,
        }
    }
}

/// kernels/lamb.cu `dae_lr_at`, operation for operation.
fn lr_formula(kind: i32, peak: f32, warmup: u32, total: u32, f: f32, step: u32) -> f32 {
    let p = peak as f64;
    if warmup > 0 && step <= warmup {
        return (p * (step as f64 / warmup as f64)) as f32;
    }
    if kind == 0 {
        return peak;
    }
    let progress = if step >= total {
        1.0
    } else {
        (step - warmup) as f64 / (total - warmup) as f64
    };
    let f = f as f64;
    let shape = if kind == 1 {
        (1.0 + cos_pi(progress)) * 0.5
    } else {
        1.0 - progress
    };
    (p * (f + (1.0 - f) * shape)) as f32
}

/// 1/n! (correctly rounded) with alternating signs: the Taylor series of
/// cos (even n) and sin (odd n). The same decimal literals are in
/// kernels/lamb.cu; both languages round them to the same f64.
const COS_C: [f64; 8] = [
    -0.5,
    0.041666666666666664,
    -0.001388888888888889,
    2.48015873015873e-05,
    -2.755731922398589e-07,
    2.08767569878681e-09,
    -1.1470745597729725e-11,
    4.779477332387385e-14,
];
const SIN_C: [f64; 7] = [
    -0.16666666666666666,
    0.008333333333333333,
    -0.0001984126984126984,
    2.7557319223985893e-06,
    -2.505210838544172e-08,
    1.6059043836821613e-10,
    -7.647163731819816e-13,
];
/// kernels/lamb.cu spells it 3.141592653589793: the same f64.
const PI: f64 = std::f64::consts::PI;

/// cos(x) for |x| ≤ π/4: 1 + z·(c2 + z·(c4 + … + z·c16)), z = x²
/// (truncation below 3e-18).
fn cos_poly(x: f64) -> f64 {
    let z = x * x;
    let mut r = COS_C[7];
    for &c in COS_C[..7].iter().rev() {
        r = c + z * r;
    }
    1.0 + z * r
}

/// sin(x) for |x| ≤ π/4: x·(1 + z·(s3 + … + z·s15)) (truncation below 5e-17).
fn sin_poly(x: f64) -> f64 {
    let z = x * x;
    let mut r = SIN_C[6];
    for &c in SIN_C[..6].iter().rev() {
        r = c + z * r;
    }
    x * (1.0 + z * r)
}

/// cos(π·p) for p in [0, 1], from the polynomials on [0, π/4] by exact
/// reductions (1 − p and 1/2 − q are exact by Sterbenz's lemma in their
/// ranges): exactly 1 at 0, 0 at 1/2 and −1 at 1.
pub fn cos_pi(p: f64) -> f64 {
    let (q, sign) = if p > 0.5 { (1.0 - p, -1.0) } else { (p, 1.0) };
    let c = if q > 0.25 {
        sin_poly(PI * (0.5 - q))
    } else {
        cos_poly(PI * q)
    };
    sign * c
}

/// How the peak learning rate follows the batch size. Stored by name ("sqrt").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchScaling {
    /// The learning rate as given.
    #[default]
    None,
    /// ×√(batch/reference) (Hoffer et al. 2017; Adam/LAMB-style optimizers).
    Sqrt,
    /// ×batch/reference (Goyal et al. 2017, SGD).
    Linear,
}

impl BatchScaling {
    pub const ALL: [BatchScaling; 3] =
        [BatchScaling::None, BatchScaling::Sqrt, BatchScaling::Linear];

    pub fn name(self) -> &'static str {
        match self {
            BatchScaling::None => "none",
            BatchScaling::Sqrt => "sqrt",
            BatchScaling::Linear => "linear",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|k| k.name() == s) {
            Some(k) => Ok(k),
            None => fail!(
                Input,
                "unknown batch scaling rule '{s}' (none, sqrt or linear)"
            ),
        }
    }
}

impl std::str::FromStr for BatchScaling {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// How long the warmup lasts: in epochs (fractional allowed) or in steps.
/// Stored as `{"epochs": 0.5}` or `{"steps": 500}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    Epochs(f64),
    Steps(u64),
}

impl Default for Warmup {
    fn default() -> Self {
        Warmup::Epochs(0.0)
    }
}

impl Warmup {
    /// As the flag spells it: "0.5" (epochs) or "500s" (steps).
    pub fn describe(self) -> String {
        match self {
            Warmup::Epochs(e) => format!("{e}"),
            Warmup::Steps(n) => format!("{n}s"),
        }
    }

    /// The warmup in optimizer steps at `steps_per_epoch`; a fractional
    /// epoch count rounds up, so any warmup asked for lasts at least a step.
    pub fn steps(self, steps_per_epoch: usize) -> Result<u64> {
        match self {
            Warmup::Steps(n) => Ok(n),
            Warmup::Epochs(e) => {
                if !(e.is_finite() && e >= 0.0) {
                    fail!(Input, "warmup of {e} epochs: must be a finite number ≥ 0");
                }
                let steps = (e * steps_per_epoch as f64).ceil();
                if steps > u64::MAX as f64 {
                    fail!(Input, "warmup of {e} epochs is too many steps");
                }
                Ok(steps as u64)
            }
        }
    }
}

/// "2" or "0.5" (epochs), "500s" (steps).
impl std::str::FromStr for Warmup {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            crate::Error::Input(format!(
                "warmup '{s}': give epochs (2, 0.5) or steps (500s), a number ≥ 0"
            ))
        };
        if let Some(steps) = s.strip_suffix('s') {
            return steps.parse().map(Warmup::Steps).map_err(|_| bad());
        }
        match s.parse::<f64>() {
            Ok(e) if e.is_finite() && e >= 0.0 => Ok(Warmup::Epochs(e)),
            _ => Err(bad()),
        }
    }
}

/// The peak learning rate for `batch` given `lr` tuned at `reference_batch`
/// (f64, one rounding to f32). `None` returns `lr` itself.
pub fn scaled_peak(
    lr: f32,
    batch: usize,
    reference_batch: usize,
    rule: BatchScaling,
) -> Result<f32> {
    if batch == 0 || reference_batch == 0 {
        fail!(
            Input,
            "batch scaling: batch {batch} and reference batch {reference_batch} must be ≥ 1"
        );
    }
    let ratio = batch as f64 / reference_batch as f64;
    let scaled = match rule {
        BatchScaling::None => return Ok(lr),
        BatchScaling::Sqrt => (lr as f64 * ratio.sqrt()) as f32,
        BatchScaling::Linear => (lr as f64 * ratio) as f32,
    };
    if !(scaled.is_finite() && scaled > 0.0) {
        fail!(
                Input,
            "batch scaling ({}): learning rate {lr} × batch {batch} / {reference_batch} gives {scaled}, not a finite positive rate",
            rule.name()
        );
    }
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind, warmup: u32, total: u32, f: f32) -> LrSchedule {
        LrSchedule::new(kind, 3e-3, warmup, total, f).unwrap()
    }

    #[test]
    fn constant_without_warmup_is_exactly_the_peak() {
        for lr in [1e-3f32, 0.1, 7.5e-5, f32::MIN_POSITIVE] {
            let s = LrSchedule::constant(lr).unwrap();
            for step in [0, 1, 2, 1000, u32::MAX] {
                assert_eq!(s.lr_at(step).to_bits(), lr.to_bits(), "lr {lr} step {step}");
            }
        }
    }

    #[test]
    fn warmup_is_monotone_and_ends_at_the_peak() {
        for kind in ScheduleKind::ALL {
            for warmup in [1u32, 2, 3, 7, 1000] {
                let s = sched(kind, warmup, 2 * warmup + 5, 0.1);
                assert_eq!(
                    s.lr_at(1),
                    (3e-3f64 / warmup as f64) as f32,
                    "{kind:?} {warmup}"
                );
                assert_eq!(s.lr_at(warmup), 3e-3, "{kind:?} {warmup}");
                for step in 1..warmup {
                    assert!(
                        s.lr_at(step) < s.lr_at(step + 1),
                        "{kind:?} {warmup} {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn decays_reach_the_final_fraction_monotonically() {
        for kind in [
            ScheduleKind::Cosine,
            ScheduleKind::Linear,
            ScheduleKind::OneCycle,
        ] {
            for (warmup, total) in [(0u32, 1u32), (0, 10), (3, 10), (10, 10), (100, 1000)] {
                for f in [0.0f32, 0.1, 1.0 / 3.0, 1.0] {
                    let s = sched(kind, warmup, total, f);
                    let w = s.effective_warmup();
                    let end = 3e-3f32 * f;
                    // Step T ends the decay, unless it ends the warmup (T = w).
                    if w < total {
                        assert_eq!(s.lr_at(total), end, "{kind:?} {warmup}/{total} f {f}");
                    }
                    assert_eq!(s.lr_at(total + 1), end);
                    assert_eq!(s.lr_at(u32::MAX), end);
                    for step in w.max(1)..total {
                        let (a, b) = (s.lr_at(step), s.lr_at(step + 1));
                        assert!(
                            b <= a && b >= end,
                            "{kind:?} {w}/{total} f {f} step {step}: {a} → {b}"
                        );
                    }
                }
            }
        }
    }

    /// Midpoints: cosine and linear both pass through (1+f)/2 of the peak.
    #[test]
    fn midpoints_follow_the_formulas() {
        for kind in [ScheduleKind::Cosine, ScheduleKind::Linear] {
            let s = sched(kind, 10, 110, 0.2);
            let mid = s.lr_at(60) as f64;
            assert!((mid - 3e-3 * 0.6).abs() < 1e-9, "{kind:?} {mid}");
        }
        // Cosine at a quarter: f + (1−f)·(1 + cos(π/4))/2.
        let s = sched(ScheduleKind::Cosine, 0, 100, 0.0);
        let want = 3e-3 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
        assert!((s.lr_at(25) as f64 - want).abs() < 1e-9);
    }

    #[test]
    fn one_cycle_ramps_over_thirty_percent_by_default() {
        let s = sched(ScheduleKind::OneCycle, 0, 1000, 0.01);
        assert_eq!(s.effective_warmup(), 300);
        assert_eq!(s.lr_at(300), 3e-3);
        assert!(s.lr_at(299) < 3e-3 && s.lr_at(301) < 3e-3);
        assert_eq!(
            sched(ScheduleKind::OneCycle, 0, 2, 0.0).effective_warmup(),
            1
        );
        assert_eq!(
            sched(ScheduleKind::OneCycle, 50, 1000, 0.0).effective_warmup(),
            50
        );
    }

    #[test]
    fn cos_pi_matches_libm_over_a_sweep() {
        let n = 200_000;
        let mut worst = 0.0f64;
        for i in 0..=n {
            let p = i as f64 / n as f64;
            worst = worst.max((cos_pi(p) - (PI * p).cos()).abs());
        }
        // Awkward points: the reduction boundaries and their neighbours.
        for p in [0.25f64, 0.5, 0.75, 1.0] {
            for q in [
                p,
                f64::from_bits(p.to_bits() - 1),
                f64::from_bits(p.to_bits() + 1),
            ] {
                if q <= 1.0 {
                    worst = worst.max((cos_pi(q) - (PI * q).cos()).abs());
                }
            }
        }
        assert!(worst <= 1e-14, "worst |cos_pi − cos| = {worst:e}");
        assert_eq!(cos_pi(0.0), 1.0);
        assert_eq!(cos_pi(0.5), 0.0);
        assert_eq!(cos_pi(1.0), -1.0);
    }

    #[test]
    fn bad_schedules_are_refused_with_their_reason() {
        let err = |r: Result<LrSchedule>| r.unwrap_err().to_string();
        let k = ScheduleKind::Cosine;
        assert!(err(LrSchedule::new(k, 0.0, 0, 10, 0.0)).contains("must be finite and > 0"));
        assert!(err(LrSchedule::new(k, f32::NAN, 0, 10, 0.0)).contains("finite"));
        assert!(err(LrSchedule::new(k, f32::INFINITY, 0, 10, 0.0)).contains("finite"));
        assert!(err(LrSchedule::new(k, 1e-3, 11, 10, 0.0))
            .contains("11 warmup steps exceed the 10 total"));
        assert!(err(LrSchedule::new(k, 1e-3, 0, 10, 1.5)).contains("final fraction 1.5"));
        assert!(err(LrSchedule::new(k, 1e-3, 0, 10, -0.1)).contains("[0, 1]"));
        assert!(err(LrSchedule::new(k, 1e-3, 0, 0, 0.0)).contains("needs the total steps"));
        assert!(err(LrSchedule::new(k, 1e-3, 0, u32::MAX, 0.0)).contains("device step counter"));
        assert!(err(LrSchedule::new(ScheduleKind::Constant, 1e-3, 5, 0, 1.0)).contains("exceed"));
        assert!(ScheduleKind::parse("cosine").is_ok());
        assert!(ScheduleKind::parse("cos")
            .unwrap_err()
            .to_string()
            .contains("'cos'"));
        assert!(BatchScaling::parse("root")
            .unwrap_err()
            .to_string()
            .contains("none, sqrt or linear"));
    }

    #[test]
    fn names_and_warmups_parse_and_round_trip() {
        for k in ScheduleKind::ALL {
            assert_eq!(k.name().parse::<ScheduleKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<ScheduleKind>(&json).unwrap(), k);
        }
        for b in BatchScaling::ALL {
            assert_eq!(b.name().parse::<BatchScaling>().unwrap(), b);
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.name()));
        }
        assert_eq!("2".parse::<Warmup>().unwrap(), Warmup::Epochs(2.0));
        assert_eq!("0.5".parse::<Warmup>().unwrap(), Warmup::Epochs(0.5));
        assert_eq!("500s".parse::<Warmup>().unwrap(), Warmup::Steps(500));
        for bad in ["", "s", "-1", "nan", "inf", "1.5s", "-3s", "x"] {
            assert!(bad.parse::<Warmup>().is_err(), "{bad}");
        }
        assert_eq!(Warmup::Epochs(0.5).steps(3).unwrap(), 2);
        assert_eq!(Warmup::Epochs(2.0).steps(3).unwrap(), 6);
        assert_eq!(Warmup::Epochs(0.0).steps(3).unwrap(), 0);
        assert_eq!(Warmup::Steps(7).steps(3).unwrap(), 7);
        let w = Warmup::Epochs(0.5);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, r#"{"epochs":0.5}"#);
        assert_eq!(serde_json::from_str::<Warmup>(&json).unwrap(), w);
    }

    #[test]
    fn batch_scaling_rules() {
        let lr = 1e-3f32;
        assert_eq!(scaled_peak(lr, 4096, 256, BatchScaling::None).unwrap(), lr);
        assert_eq!(scaled_peak(lr, 256, 256, BatchScaling::Sqrt).unwrap(), lr);
        assert_eq!(scaled_peak(lr, 256, 256, BatchScaling::Linear).unwrap(), lr);
        assert_eq!(
            scaled_peak(lr, 1024, 256, BatchScaling::Sqrt).unwrap(),
            2e-3
        );
        assert_eq!(
            scaled_peak(lr, 1024, 256, BatchScaling::Linear).unwrap(),
            4e-3
        );
        let half = scaled_peak(lr, 128, 256, BatchScaling::Sqrt).unwrap() as f64;
        assert!((half - 1e-3 * 0.5f64.sqrt()).abs() < 1e-10);
        assert!(scaled_peak(lr, 0, 256, BatchScaling::Sqrt).is_err());
        assert!(scaled_peak(lr, 256, 0, BatchScaling::None).is_err());
        assert!(scaled_peak(f32::MAX, 1 << 20, 1, BatchScaling::Linear)
            .unwrap_err()
            .to_string()
            .contains("not a finite positive rate"));
    }
}
