//! `dae check --compare OLD.json`: this run against an earlier report, case
//! by case (matched by name, precision and shape, so reports from other
//! cards, drivers and commits compare). A case that passed and now fails,
//! or whose error grew by more than the allowed factor, fails the run; a
//! comparison that matches no case fails too.

use super::report::{status, FORMAT};
use anyhow::{bail, Context, Result};
use dae_core::check::CaseResult;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Errors below this share of their bound are noise, not drift: growth is
/// judged against at least this much.
const GROWTH_FLOOR: f64 = 0.01;

/// A case of the earlier report.
#[derive(Debug)]
struct OldCase {
    passed: bool,
    /// None for a skipped case.
    worst: Option<f64>,
}

#[derive(Debug)]
pub struct Baseline {
    path: PathBuf,
    device: String,
    commit: String,
    cases: HashMap<String, OldCase>,
}

/// A JSON number, or "inf"/"NaN" as the report writes non-finite values.
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the --compare report {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// A report's text, read from `path`.
    fn parse(text: &str, path: &Path) -> Result<Self> {
        let doc: Value = serde_json::from_str(text).with_context(|| {
            format!(
                "{} is not JSON (expected a dae check --json report)",
                path.display()
            )
        })?;
        let bad =
            |what: String| anyhow::anyhow!("{}: not a {FORMAT} report: {what}", path.display());
        if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad(format!("its \"format\" is not \"{FORMAT}\"")));
        }
        let list = doc
            .get("cases")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"cases\" array".into()))?;
        let mut cases = HashMap::new();
        for (i, c) in list.iter().enumerate() {
            let field = |name: &str| {
                c.get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("case {i} has no string \"{name}\"")))
            };
            let id = format!(
                "{} [{}] {}",
                field("case")?,
                field("precision")?,
                field("shape")?
            );
            let st = field("status")?;
            let worst = match st {
                "skipped" => None,
                "passed" | "failed" => Some(
                    c.get("worst")
                        .and_then(number)
                        .ok_or_else(|| bad(format!("case {i} ({id}) has no number \"worst\"")))?,
                ),
                other => return Err(bad(format!("case {i} ({id}) has status \"{other}\""))),
            };
            let old = OldCase {
                passed: st == "passed",
                worst,
            };
            if cases.insert(id.clone(), old).is_some() {
                return Err(bad(format!("case {id} appears twice")));
            }
        }
        let text_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_string();
        Ok(Baseline {
            path: path.to_path_buf(),
            device: text_of(doc.pointer("/device/name")),
            commit: text_of(doc.get("commit")),
            cases,
        })
    }

    /// This run's cases against the baseline; prints what changed.
    pub fn compare(&self, cases: &[CaseResult], max_growth: f64) -> Result<Drift> {
        let mut rows = Vec::new();
        let (mut compared, mut only_new) = (0, 0);
        for c in cases {
            let id = c.key.id();
            let Some(old) = self.cases.get(&id) else {
                only_new += 1;
                continue;
            };
            let (Some(was), Some(now)) = (old.worst, c.worst()) else {
                continue; // skipped on one side
            };
            compared += 1;
            let growth = now / was.max(GROWTH_FLOOR);
            let verdict = if old.passed && c.failed() {
                Change::Regressed
            } else if growth > max_growth {
                Change::Grew
            } else if !old.passed && c.passed() {
                Change::Fixed
            } else if growth < 1.0 / max_growth && was > GROWTH_FLOOR {
                Change::Shrank
            } else {
                continue;
            };
            rows.push((id, old.passed, was, status(c), now, verdict));
        }
        if compared == 0 {
            bail!(
                "--compare {}: no case of this run is in that report (nothing to compare; {} cases there, {} here)",
                self.path.display(),
                self.cases.len(),
                cases.len()
            );
        }
        say!(
            "\ncompared with {} ({}, {}): {compared} cases; {only_new} only here, {} only there",
            self.path.display(),
            self.device,
            self.commit,
            self.cases.len().saturating_sub(compared)
        );
        if rows.is_empty() {
            say!("no change beyond ×{max_growth} in any case");
        } else {
            say!(
                "{:<64} {:>8} {:>10} {:>8} {:>10} {:>9}  change",
                "case",
                "was",
                "err/bound",
                "now",
                "err/bound",
                "growth"
            );
        }
        for (id, was_ok, was, now_status, now, change) in &rows {
            say!(
                "{id:<64} {:>8} {was:>10.3e} {now_status:>8} {now:>10.3e} {:>9.2}  {change:?}",
                if *was_ok { "passed" } else { "failed" },
                now / was.max(GROWTH_FLOOR)
            );
        }
        Ok(Drift {
            regressions: rows
                .iter()
                .filter(|r| matches!(r.5, Change::Regressed | Change::Grew))
                .count(),
            max_growth,
        })
    }
}

#[derive(Debug)]
enum Change {
    Regressed,
    Grew,
    Fixed,
    Shrank,
}

#[derive(Debug)]
pub struct Drift {
    regressions: usize,
    max_growth: f64,
}

impl Drift {
    pub fn verdict(&self) -> Result<()> {
        if self.regressions > 0 {
            bail!(
                "{} cases regressed against the --compare report (now failing, or error grown beyond ×{})",
                self.regressions,
                self.max_growth
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dae_core::check::{Bound, CaseKey, CaseResult};
    use dae_core::Precision;
    use std::time::Instant;

    /// A case whose one element is off by `diff` against a bound of 1.
    fn case(name: &str, diff: f32) -> CaseResult {
        let key = CaseKey::new("gemm_fwd", name, Precision::Fp32, "4×4×4".into());
        let bound = Bound::elementwise(1.0, 0.0, "|want|", "test".into());
        let got = [diff];
        CaseResult::from_runs(
            key,
            "fused".into(),
            bound,
            [&got, &got],
            &[0.0],
            None,
            1,
            Instant::now(),
        )
    }

    fn baseline(json: &str) -> Result<Baseline> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        std::fs::write(&path, json).unwrap();
        Baseline::load(&path)
    }

    fn report(cases: &[CaseResult]) -> String {
        let rows: Vec<String> = cases
            .iter()
            .map(|c| {
                format!(
                    r#"{{"case": "{}", "precision": "fp32", "shape": "4×4×4", "status": "{}", "worst": {}}}"#,
                    c.key.name,
                    status(c),
                    c.worst().unwrap()
                )
            })
            .collect();
        format!(r#"{{"format": "{FORMAT}", "cases": [{}]}}"#, rows.join(","))
    }

    #[test]
    fn regressions_and_growth_fail_and_the_rest_passes() {
        let old = baseline(&report(&[case("a", 0.1), case("b", 0.1), case("c", 2.0)])).unwrap();
        // The same errors: no drift.
        let same = [case("a", 0.1), case("b", 0.1), case("c", 2.0)];
        assert!(old.compare(&same, 2.0).unwrap().verdict().is_ok());
        // a grew ×3 (still passing), c was fixed.
        let grew = [case("a", 0.3), case("b", 0.1), case("c", 0.5)];
        let d = old.compare(&grew, 2.0).unwrap();
        assert_eq!(d.regressions, 1);
        assert!(d
            .verdict()
            .unwrap_err()
            .to_string()
            .contains("1 cases regressed"));
        assert!(old.compare(&grew, 4.0).unwrap().verdict().is_ok());
        // b passed and now fails.
        let broke = [case("b", 1.5)];
        assert_eq!(old.compare(&broke, 100.0).unwrap().regressions, 1);
        // Tiny errors growing within the noise floor are not drift.
        let tiny = baseline(&report(&[case("a", 1e-4)])).unwrap();
        assert!(tiny
            .compare(&[case("a", 1e-2)], 2.0)
            .unwrap()
            .verdict()
            .is_ok());
    }

    #[test]
    fn a_comparison_sharing_no_case_fails() {
        let old = baseline(&report(&[case("a", 0.1)])).unwrap();
        let err = old.compare(&[case("z", 0.1)], 2.0).unwrap_err().to_string();
        assert!(
            err.contains("no case of this run is in that report"),
            "{err}"
        );
    }

    #[test]
    fn reports_of_another_format_are_refused_by_field() {
        for (json, expect) in [
            ("not json", "is not JSON"),
            ("[]", "its \"format\" is not"),
            (
                r#"{"format": "dae-bench/1", "cases": []}"#,
                "its \"format\" is not",
            ),
            (
                &format!(r#"{{"format": "{FORMAT}"}}"#),
                "no \"cases\" array",
            ),
            (
                &format!(r#"{{"format": "{FORMAT}", "cases": [{{"case": 3}}]}}"#),
                "case 0 has no string \"case\"",
            ),
            (
                &format!(
                    r#"{{"format": "{FORMAT}", "cases": [{{"case": "a", "precision": "fp32", "shape": "1", "status": "passed", "worst": "big"}}]}}"#
                ),
                "no number \"worst\"",
            ),
            (
                &format!(
                    r#"{{"format": "{FORMAT}", "cases": [{{"case": "a", "precision": "fp32", "shape": "1", "status": "maybe"}}]}}"#
                ),
                "status \"maybe\"",
            ),
        ] {
            let err = format!("{:#}", baseline(json).err().unwrap());
            assert!(err.contains(expect), "{json}: {err}");
        }
    }

    /// Mutated reports (fields dropped or retyped, cases replaced, bytes
    /// flipped) through the reader and the comparison: a clean error or a
    /// verdict, never a panic.
    #[test]
    fn fuzz_check_reports() {
        use dae_data::testing::fuzz;
        use serde_json::json;
        let ours = [case("a", 0.1), case("b", 2.0)];
        let valid: Value = serde_json::from_str(&report(&ours)).unwrap();
        let any = |m: &mut fuzz::Mutator| match m.below(7) {
            0 => Value::Null,
            1 => json!("inf"),
            2 => json!(-1e300),
            3 => json!([]),
            4 => json!({}),
            5 => json!(m.number()),
            _ => json!("passed"),
        };
        let mutated = |m: &mut fuzz::Mutator| {
            let mut doc = valid.clone();
            match m.below(4) {
                0 => {
                    let f = ["case", "precision", "shape", "status", "worst"][m.below(5)];
                    let i = m.below(2);
                    if m.chance(2) {
                        doc["cases"][i].as_object_mut().unwrap().remove(f);
                    } else {
                        doc["cases"][i][f] = any(m);
                    }
                }
                1 => doc["cases"] = any(m),
                2 => doc["format"] = any(m),
                _ => {}
            }
            let mut bytes = serde_json::to_vec(&doc).unwrap();
            if m.chance(3) {
                m.mutate_bytes(&mut bytes);
            }
            bytes
        };
        fuzz::run("check-json", 7, fuzz::cases(1500), mutated, |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let b = Baseline::parse(&text, Path::new("old.json"))?;
            b.compare(&ours, 2.0)?.verdict()
        });
    }
}
