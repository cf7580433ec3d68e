//! `dae check` end to end on the host emulator: reports, JUnit, a single
//! case against the suite's report, drift that must fail, and `--bench`
//! refused where there is no device timer. Needs a dae built with the
//! emulator: `cargo test -p dae-cli --features emulator --test
//! check_emulator` (`.ci/run` runs it); without the feature this file
//! holds no test.
#![cfg(feature = "emulator")]

mod common;
use common::*;
use serde_json::Value;

const CASE: [&str; 6] = [
    "--case",
    "gemm_fwd relu",
    "--shape",
    "16x34x5",
    "--device",
    "emulator",
];

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cases(doc: &Value) -> &Vec<Value> {
    doc["cases"].as_array().unwrap()
}

#[test]
fn reports_junit_seeds_and_drift() {
    let tmp = scratch();
    let (json, xml) = (tmp.path().join("a.json"), tmp.path().join("a.xml"));
    let mut args = CASE.to_vec();
    args.extend(["--json", s(&json), "--junit", s(&xml)]);
    let out = ok(tmp.path(), &[&["check"], &args[..]].concat());
    assert!(out.contains("6 cases: 6 passed, 0 failed"), "{out}");
    let doc = read(&json);
    assert_eq!(doc["format"], "dae-check/1");
    assert_eq!(doc["seed"], 1);
    assert_eq!(doc["device"]["kind"], "emulator");
    assert_eq!(doc["device"]["sm_count"], 132);
    assert!(doc["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(cases(&doc).len(), 6);
    assert!(cases(&doc)
        .iter()
        .all(|c| c["status"] == "passed" && c["same_bits"] == true));
    let junit = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(
        junit
            .matches("<testcase classname=\"dae.check.gemm_fwd\"")
            .count(),
        6
    );

    // Another seed: other inputs, other errors.
    let other = tmp.path().join("b.json");
    let mut args2 = CASE.to_vec();
    args2.extend(["--seed", "2", "--json", s(&other)]);
    ok(tmp.path(), &[&["check"], &args2[..]].concat());
    let diff = |d: &Value| cases(d)[0]["max_abs_diff"].as_f64().unwrap();
    assert_ne!(diff(&doc), diff(&read(&other)));
    assert_eq!(read(&other)["seed"], 2);

    // The same run against its own report: no drift at all.
    let mut same = CASE.to_vec();
    same.extend(["--compare", s(&json), "--max-growth", "1"]);
    let out = ok(tmp.path(), &[&["check"], &same[..]].concat());
    assert!(
        out.contains("compared with") && out.contains("6 cases"),
        "{out}"
    );

    // A report whose errors were all zero: every case now "grew".
    let mut doctored = doc.clone();
    for c in doctored["cases"].as_array_mut().unwrap() {
        c["worst"] = Value::from(0.0);
    }
    let zero = tmp.path().join("zero.json");
    std::fs::write(&zero, doctored.to_string()).unwrap();
    let mut grew = CASE.to_vec();
    grew.extend(["--compare", s(&zero)]);
    fails(
        tmp.path(),
        &[&["check"], &grew[..]].concat(),
        &["regressed against the --compare report"],
    );

    // A report sharing no case with this run.
    doctored["cases"] = Value::Array(vec![]);
    std::fs::write(&zero, doctored.to_string()).unwrap();
    fails(
        tmp.path(),
        &[&["check"], &grew[..]].concat(),
        &["no case of this run is in that report"],
    );
}

#[test]
fn bench_needs_a_device_timer() {
    let tmp = scratch();
    fails(
        tmp.path(),
        &[&["check", "--bench"], &CASE[..]].concat(),
        &[
            "--bench times kernels with device events",
            "run it on a GPU",
        ],
    );
}

/// `--trace` prints the emulator's traffic table and keeps it in the JSON;
/// on another device it is an error.
#[test]
fn trace_counts_the_emulators_traffic() {
    let tmp = scratch();
    let json = tmp.path().join("t.json");
    let mut args = vec!["check", "--trace", "--json", s(&json)];
    args.extend(CASE);
    let out = ok(tmp.path(), &args);
    assert!(out.contains("gemm_fwd_f32"), "{out}");
    let doc = read(&json);
    let trace = &doc["emulator_trace"];
    assert!(
        trace.as_array().is_some_and(|rows| !rows.is_empty())
            || trace.as_object().is_some_and(|o| !o.is_empty()),
        "{trace}"
    );
    fails(
        tmp.path(),
        &["check", "--trace"],
        &["--trace", "--device emulator"],
    );
}
