//! dae-bench-1 documents read back (`bench --compare`, `--peers`): every
//! row's fields checked when read, so a malformed file fails before the
//! benchmark runs, naming the file, the row and the field, instead of
//! panicking after it.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::path::Path;

pub const SCHEMA: &str = "dae-bench-1";

/// The fields of a result row that reports use, with what they must be.
const NUMBER_FIELDS: &[&str] = &["ms_per_step", "samples_per_second"];

/// Reads a dae-bench-1 document (or a list of them, as the peer script
/// writes one per mode), every row checked.
pub fn read_results(path: &Path) -> Result<Vec<Value>> {
    let p = path.display();
    let text = dae_data::read_regular_text(path)?;
    parse_results(&text, &p.to_string())
}

/// `read_results` on text; `p` names it in errors.
pub fn parse_results(text: &str, p: &str) -> Result<Vec<Value>> {
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
    }
    Ok(docs)
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
    old: &Value,
    batches: &[usize],
    precisions: &[String],
) -> Result<()> {
    let rows = old["results"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let overlaps = rows.iter().any(|r| {
        let b = r["batch"].as_u64().unwrap_or(0);
        batches.iter().any(|&x| x as u64 == b)
            && precisions.iter().any(|p| r["precision"] == p.as_str())
    });
    if !overlaps {
        let have: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{} batch {}",
                    r["precision"].as_str().unwrap_or("?"),
                    r["batch"]
                )
            })
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

    fn read(v: &Value) -> Result<Vec<Value>> {
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
        let old = doc(json!([good_row()]));
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
