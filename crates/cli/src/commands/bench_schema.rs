//! dae-bench-1 documents read back (`bench --compare`, `--peers`): every
//! row's fields checked when read, so a malformed file fails before the
//! benchmark runs, naming the file, the row and the field, instead of
//! panicking after it.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

pub const SCHEMA: &str = "dae-bench-1";

/// A result row's fields that reports use (a dae row has more: see
/// `bench::ResultRow`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchRow {
    pub batch: u64,
    pub precision: String,
    pub ms_per_step: f64,
    pub samples_per_second: f64,
}

/// The device a document was measured on, as far as reports show it.
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceName {
    #[serde(default)]
    pub name: Option<String>,
}

/// A dae-bench-1 document as read back: its rows and what names it.
#[derive(Clone, Debug, Deserialize)]
pub struct BenchResults {
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub device: Option<DeviceName>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    pub results: Vec<BenchRow>,
}

impl BenchResults {
    /// The row measured at `batch` and `precision`, if any.
    pub fn find(&self, batch: u64, precision: &str) -> Option<&BenchRow> {
        self.results
            .iter()
            .find(|r| r.batch == batch && r.precision == precision)
    }
}

/// The fields of a result row that reports use, with what they must be.
const NUMBER_FIELDS: &[&str] = &["ms_per_step", "samples_per_second"];

/// Reads a dae-bench-1 document (or a list of them, as the peer script
/// writes one per mode), every row checked.
pub fn read_results(path: &Path) -> Result<Vec<BenchResults>> {
    let p = path.display();
    let text = dae_data::read_regular_text(path)?;
    parse_results(&text, &p.to_string())
}

/// `read_results` on text; `p` names it in errors.
pub fn parse_results(text: &str, p: &str) -> Result<Vec<BenchResults>> {
    let v: Value = serde_json::from_str(text).map_err(|e| anyhow!("{p}: not JSON ({e})"))?;
    let docs = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    if docs.is_empty() {
        bail!("{p}: holds no {SCHEMA} result (an empty list)");
    }
    for (i, d) in docs.iter().enumerate() {
        let at = if docs.len() > 1 {
            format!("{p}: document {i}")
        } else {
            p.to_string()
        };
        if d["schema"] != SCHEMA {
            bail!("{at}: not a {SCHEMA} result (schema {})", d["schema"]);
        }
        let Some(rows) = d["results"].as_array() else {
            bail!(
                "{at}: field 'results' is {}, not a list of rows",
                d["results"]
            );
        };
        if rows.is_empty() {
            bail!("{at}: field 'results' holds no rows");
        }
        for (j, r) in rows.iter().enumerate() {
            check_row(r).map_err(|e| anyhow!("{at}: results[{j}]: {e}"))?;
        }
        for f in ["tool", "commit", "date"] {
            check_optional_string(d, f).map_err(|e| anyhow!("{at}: {e}"))?;
        }
        if !(d["device"].is_null() || d["device"].is_object()) {
            bail!("{at}: field 'device' is {}, not an object", d["device"]);
        }
        check_optional_string(&d["device"], "name").map_err(|e| anyhow!("{at}: device: {e}"))?;
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| BenchResults::deserialize(d).map_err(|e| anyhow!("{p}: document {i}: {e}")))
        .collect()
}

/// A field that may be absent or null, else must be a string.
fn check_optional_string(d: &Value, f: &str) -> Result<()> {
    match &d[f] {
        Value::Null | Value::String(_) => Ok(()),
        other => bail!("field '{f}' is {other}, not a string"),
    }
}

/// A row's batch (a positive integer), precision (a string) and timings
/// (positive finite numbers).
fn check_row(r: &Value) -> Result<()> {
    if !r.is_object() {
        bail!("is {r}, not an object");
    }
    match r["batch"].as_u64() {
        Some(b) if b > 0 => {}
        _ => bail!("field 'batch' is {}, not a positive integer", r["batch"]),
    }
    if !r["precision"].is_string() {
        bail!("field 'precision' is {}, not a string", r["precision"]);
    }
    for f in NUMBER_FIELDS {
        match r[*f].as_f64() {
            Some(v) if v.is_finite() && v > 0.0 => {}
            _ => bail!("field '{f}' is {}, not a positive number", r[*f]),
        }
    }
    Ok(())
}

/// Fails unless `old` has a row for at least one of the (batch, precision)
/// settings about to be measured: a compare that matches nothing would
/// pass without comparing anything.
pub fn require_overlap(
    path: &Path,
    old: &BenchResults,
    batches: &[usize],
    precisions: &[String],
) -> Result<()> {
    let overlaps = old
        .results
        .iter()
        .any(|r| batches.iter().any(|&x| x as u64 == r.batch) && precisions.contains(&r.precision));
    if !overlaps {
        let have: Vec<String> = old
            .results
            .iter()
            .map(|r| format!("{} batch {}", r.precision, r.batch))
            .collect();
        bail!(
            "--compare {}: no row matches a setting measured now (batch sizes {batches:?}, \
             precisions {precisions:?}); it has {}",
            path.display(),
            have.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(rows: Value) -> Value {
        json!({"schema": SCHEMA, "results": rows})
    }

    fn read(v: &Value) -> Result<Vec<BenchResults>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        std::fs::write(&path, v.to_string()).unwrap();
        read_results(&path)
    }

    fn good_row() -> Value {
        json!({"batch": 256, "precision": "fp32", "ms_per_step": 1.5, "samples_per_second": 9.0})
    }

    #[test]
    fn malformed_documents_are_named_by_field() {
        let err = |v: Value| format!("{:#}", read(&v).unwrap_err());
        assert!(err(json!([])).contains("empty list"));
        assert!(err(doc(json!([]))).contains("no rows"));
        assert!(err(doc(json!("x"))).contains("'results'"));
        assert!(err(json!({"schema": "other"})).contains("not a dae-bench-1"));
        let named_doc = |f: &str, v: Value| {
            let mut d = doc(json!([good_row()]));
            d[f] = v;
            d
        };
        let named = |f: &str, bad: Value| err(named_doc(f, bad));
        assert!(named("tool", json!(3)).contains("'tool'"));
        assert!(named("device", json!("gpu")).contains("'device'"));
        assert!(read(&named_doc("device", Value::Null)).is_ok());
        assert!(named("device", json!({"name": []})).contains("device: field 'name'"));
        for (field, bad) in [
            ("ms_per_step", json!("fast")),
            ("ms_per_step", json!(-1.0)),
            ("samples_per_second", Value::Null),
            ("batch", json!("256")),
            ("batch", json!(0)),
            ("precision", json!(32)),
        ] {
            let mut row = good_row();
            row[field] = bad;
            let e = err(doc(json!([good_row(), row])));
            assert!(
                e.contains("results[1]") && e.contains(field),
                "{field}: {e}"
            );
        }
        let mut row = good_row();
        row.as_object_mut().unwrap().remove("samples_per_second");
        assert!(err(doc(json!([row]))).contains("samples_per_second"));
        assert_eq!(read(&doc(json!([good_row()]))).unwrap().len(), 1);
    }

    #[test]
    fn a_compare_must_overlap() {
        let old = read(&doc(json!([good_row()]))).unwrap().remove(0);
        let p = Path::new("old.json");
        let fp32 = vec!["fp32".to_string()];
        assert!(require_overlap(p, &old, &[256, 4096], &fp32).is_ok());
        let e = require_overlap(p, &old, &[512], &fp32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no row matches") && e.contains("fp32 batch 256"),
            "{e}"
        );
        assert!(require_overlap(p, &old, &[256], &["bf16".to_string()]).is_err());
    }
}
