//! The report of one `dae check` run: what ran where (device, driver, NVRTC,
//! commit, seed, selection, tolerances) and every case, as JSON (the format
//! `--compare` reads back) and as JUnit XML for CI systems.

use anyhow::Result;
use dae_core::check::bound::U32;
use dae_core::check::{CaseResult, GoldenVerdict, Outcome, Selection};
use dae_core::{DeviceInfo, Precision};
use dae_model::gpu_check::model_tolerance;
use quick_xml::escape::escape;
use serde_json::{json, Value};
use std::fmt::Write;

/// The JSON report's format tag; `--compare` reads only this.
pub const FORMAT: &str = "dae-check/1";

pub struct Header {
    pub device: DeviceInfo,
    pub commit: &'static str,
    pub seed: u64,
    pub selection: Selection,
    pub quick: bool,
}

fn version((major, minor): (i32, i32)) -> String {
    format!("{major}.{minor}")
}

impl Header {
    pub fn new(device: &DeviceInfo, seed: u64, selection: &Selection, quick: bool) -> Self {
        Header {
            device: device.clone(),
            commit: env!("DAE_GIT_COMMIT"),
            seed,
            selection: selection.clone(),
            quick,
        }
    }

    pub fn describe(&self) -> String {
        let d = &self.device;
        let opt = |v: Option<(i32, i32)>| v.map_or("none".to_string(), version);
        format!(
            "device: {} ({}, {} SMs, compute capability {}); driver CUDA {}; NVRTC {}; dae {}; seed {}",
            d.name,
            d.kind,
            d.sm_count,
            opt(d.compute_capability),
            opt(d.driver),
            opt(d.nvrtc),
            self.commit,
            self.seed
        )
    }

    fn to_json(&self) -> Value {
        let (d, s) = (&self.device, &self.selection);
        json!({
            "format": FORMAT,
            "device": {
                "kind": d.kind, "name": d.name, "sm_count": d.sm_count,
                "compute_capability": d.compute_capability.map(version),
                "driver": d.driver.map(version), "nvrtc": d.nvrtc.map(version),
            },
            "commit": self.commit,
            "seed": self.seed,
            "selection": {"case": s.case, "precision": s.precision.map(Precision::name),
                          "shape": s.shape, "quick": self.quick},
            "tolerances": tolerances(),
        })
    }
}

/// The rules every case's bound follows (each case also carries its own
/// numbers).
fn tolerances() -> Value {
    let model: serde_json::Map<String, Value> = Precision::ALL
        .iter()
        .map(|&p| (p.name().to_string(), json!(model_tolerance(p))))
        .collect();
    json!({
        "u32": U32,
        "per_element": "|got − want| ≤ abs + rel·scale, scale per case (Σ|a·b| for products, |want| for elementwise)",
        "products": {
            "fp32": "rel = (L+2)·u32 over the reduction length L",
            "tf32": "rel = 1.01·2⁻¹⁰ + 2·(L+2)·u32",
            "bf16": "rel = 1.01·2⁻⁷ + 2·(L+2)·u32",
            "sigmoid": "abs = 8·u32",
        },
        "model_normwise": model,
    })
}

/// A number in JSON; non-finite values as strings ("inf", "NaN").
fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

pub fn status(c: &CaseResult) -> &'static str {
    if c.skipped() {
        "skipped"
    } else if c.passed() {
        "passed"
    } else {
        "failed"
    }
}

fn case_json(c: &CaseResult) -> Value {
    let mut v = json!({
        "family": c.key.family, "case": c.key.name, "precision": c.key.precision,
        "shape": c.key.shape, "path": c.path, "status": status(c), "seconds": c.seconds,
    });
    let o = v.as_object_mut().expect("an object");
    match &c.outcome {
        Outcome::Skipped(why) => {
            o.insert("skip_reason".into(), json!(why));
        }
        Outcome::Checked(k) => {
            let b = &k.bound;
            let mismatches: Vec<Value> = k
                .verdict
                .mismatches
                .iter()
                .map(|m| {
                    json!({"index": m.index, "row": m.row, "col": m.col, "got": number(m.got),
                           "want": number(m.want), "diff": number(m.diff), "allowed": number(m.allowed)})
                })
                .collect();
            for (key, value) in [
                ("worst", number(k.verdict.worst)),
                ("max_abs_diff", number(k.verdict.max_abs_diff)),
                ("elements", json!(k.verdict.elements)),
                ("violations", json!(k.verdict.violations)),
                (
                    "bound",
                    json!({"abs": b.abs, "rel": b.rel, "scale": b.scale, "rule": b.rule, "normwise": b.normwise}),
                ),
                ("same_bits", json!(k.bits_differ_at.is_none())),
                ("bits_differ_at", json!(k.bits_differ_at)),
                ("mismatches", json!(mismatches)),
            ] {
                o.insert(key.into(), value);
            }
        }
    }
    if let Some(g) = &c.golden {
        let golden = match g {
            GoldenVerdict::Same => json!("same"),
            GoldenVerdict::Differs {
                count,
                first,
                got,
                golden,
            } => json!({
                "differing": count, "first": first, "got": number(*got as f64),
                "golden": number(*golden as f64),
            }),
        };
        o.insert("golden".into(), golden);
    }
    if let Some(t) = &c.timing {
        o.insert(
            "timing".into(),
            json!({"ms": t.ms, "flops": t.flops, "bytes": t.bytes}),
        );
    }
    v
}

pub struct Report {
    pub header: Header,
    pub cases: Vec<CaseResult>,
    pub seconds: f64,
}

impl Report {
    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&CaseResult) -> bool| self.cases.iter().filter(|c| f(c)).count();
        (
            count(CaseResult::passed),
            count(CaseResult::failed),
            count(CaseResult::skipped),
        )
    }

    pub fn to_json(&self) -> Result<String> {
        let (passed, failed, skipped) = self.counts();
        let mut doc = self.header.to_json();
        let o = doc.as_object_mut().expect("an object");
        o.insert(
            "cases".into(),
            Value::Array(self.cases.iter().map(case_json).collect()),
        );
        o.insert(
            "counts".into(),
            json!({"passed": passed, "failed": failed, "skipped": skipped}),
        );
        o.insert("seconds".into(), json!(self.seconds));
        Ok(serde_json::to_string_pretty(&doc)?)
    }

    /// JUnit XML: one testsuite, one testcase per case (classname
    /// `dae.check.<family>`), a failure holding the first mismatches.
    pub fn to_junit(&self) -> String {
        let (_, failed, skipped) = self.counts();
        let h = &self.header;
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let suite = format!(
            "dae check on {} ({}), seed {}",
            h.device.name, h.device.kind, h.seed
        );
        let _ = writeln!(
            x,
            "<testsuites name=\"dae check\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            self.cases.len(),
            self.seconds
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
            escape(suite.as_str()),
            self.cases.len(),
            self.seconds
        );
        x.push_str("    <properties>\n");
        for (name, value) in [
            ("device", h.describe()),
            ("commit", h.commit.to_string()),
            ("seed", h.seed.to_string()),
        ] {
            let _ = writeln!(
                x,
                "      <property name=\"{name}\" value=\"{}\"/>",
                escape(value.as_str())
            );
        }
        x.push_str("    </properties>\n");
        for c in &self.cases {
            let _ = write!(
                x,
                "    <testcase classname=\"dae.check.{}\" name=\"{}\" time=\"{:.3}\"",
                escape(c.key.family.replace(' ', "_").as_str()),
                escape(c.key.id().as_str()),
                c.seconds
            );
            match &c.outcome {
                Outcome::Skipped(why) => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(why.as_str())
                    );
                }
                Outcome::Checked(_) if c.passed() => x.push_str("/>\n"),
                Outcome::Checked(k) => {
                    let (message, detail) = failure_text(c, k);
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        escape(message.as_str()),
                        if !k.verdict.passed() {
                            "bound"
                        } else if c.differs_from_golden() {
                            "golden"
                        } else {
                            "nondeterministic"
                        },
                        escape(detail.as_str())
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }
}

/// A failing case's one-line message and its mismatch listing.
pub fn failure_text(c: &CaseResult, k: &dae_core::check::Checked) -> (String, String) {
    let v = &k.verdict;
    let mut message = if v.passed() {
        String::new()
    } else {
        format!(
            "{} of {} elements outside {} (worst {:.3e} of the bound; {})",
            v.violations,
            v.elements,
            k.bound.describe(),
            v.worst,
            k.bound.rule
        )
    };
    if let Some(i) = k.bits_differ_at {
        if !message.is_empty() {
            message.push_str("; ");
        }
        let _ = write!(message, "two runs differ in their bits from element {i}");
    }
    if let Some(GoldenVerdict::Differs { count, first, .. }) = &c.golden {
        if !message.is_empty() {
            message.push_str("; ");
        }
        let _ = write!(
            message,
            "{count} elements differ from the emulator's golden bits, first at {first}"
        );
    }
    let mut detail = format!(
        "{} ({})\nindex row col got want |diff| allowed\n",
        c.key.id(),
        c.path
    );
    for m in &v.mismatches {
        let _ = writeln!(
            detail,
            "{} {} {} {:e} {:e} {:e} {:e}",
            m.index, m.row, m.col, m.got, m.want, m.diff, m.allowed
        );
    }
    (message, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dae_core::check::{Bound, CaseKey};
    use std::time::Instant;

    fn report() -> Report {
        let key = |name: &str| CaseKey::new("gemm_fwd", name, Precision::Bf16, "2×2×2".into());
        let bound = Bound::elementwise(0.0, 0.5, "|want|", "test <rule>".into());
        let good = [1.0f32, 2.0];
        let bad = [1.0f32, f32::NAN];
        let other = [1.0f32, 2.5];
        let want = [1.0, 2.0];
        let cases = vec![
            CaseResult::from_runs(
                key("ok"),
                "fused".into(),
                bound.clone(),
                [&good, &good],
                &want,
                None,
                2,
                Instant::now(),
            ),
            CaseResult::from_runs(
                key("nan"),
                "fused".into(),
                bound.clone(),
                [&bad, &bad],
                &want,
                None,
                2,
                Instant::now(),
            ),
            CaseResult::from_runs(
                key("flaky"),
                "fused".into(),
                bound,
                [&good, &other],
                &want,
                None,
                2,
                Instant::now(),
            ),
            CaseResult::skip(key("big"), "--quick"),
        ];
        Report {
            header: Header::new(
                &DeviceInfo {
                    kind: "host".into(),
                    name: "a & b".into(),
                    ..Default::default()
                },
                7,
                &Selection::default(),
                true,
            ),
            cases,
            seconds: 1.0,
        }
    }

    #[test]
    fn junit_marks_failures_with_mismatches_and_skips() {
        let r = report();
        assert_eq!(r.counts(), (1, 2, 1));
        let x = r.to_junit();
        assert!(x.contains(r#"tests="4" failures="2" skipped="1""#), "{x}");
        assert!(x.contains(r#"classname="dae.check.gemm_fwd" name="ok [bf16] 2×2×2""#));
        assert!(x.contains("<skipped message=\"--quick\"/>"));
        // The NaN's row and column are in the failure; XML specials escaped.
        assert!(x.contains("type=\"bound\""), "{x}");
        assert!(x.contains("\n1 0 1 NaN 2e0 inf 1e0\n"), "{x}");
        assert!(x.contains("test &lt;rule&gt;") && x.contains("a &amp; b"));
        assert!(x.contains("type=\"nondeterministic\"") && x.contains("from element 1"));
        assert_eq!(x.matches("<testcase ").count(), 4);
    }

    #[test]
    fn json_reports_name_seed_device_and_status_of_every_case() {
        let doc: Value = serde_json::from_str(&report().to_json().unwrap()).unwrap();
        assert_eq!(doc["format"], FORMAT);
        assert_eq!(doc["seed"], 7);
        assert_eq!(doc["device"]["name"], "a & b");
        let status: Vec<&str> = doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap())
            .collect();
        assert_eq!(status, ["passed", "failed", "failed", "skipped"]);
        assert_eq!(doc["cases"][1]["worst"], "inf");
        assert_eq!(doc["cases"][1]["mismatches"][0]["row"], 0);
        assert_eq!(doc["cases"][1]["mismatches"][0]["col"], 1);
        assert_eq!(doc["cases"][2]["same_bits"], false);
        assert_eq!(doc["counts"]["failed"], 2);
    }
}
