//! The GPU-node scripts (benches/gpu/first-run.sh, second-run.sh) run here
//! as a dry run: every step runs, fails with its reason (no CUDA driver, no
//! compute-sanitizer, no ncu), keeps its output file, and the script exits
//! non-zero. Their budgets, as the run records them, fit one device call.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// One device call may run 600 s; the first run must leave room for a rerun.
const FIRST_RUN_LIMIT_S: u64 = 420;

/// (name, exit, budget) of each step the script ran.
fn dry_run(script: &str, out: &Path) -> (i32, Vec<(String, i32, u64)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("bash")
        .arg(root.join(script))
        .arg(out)
        .env("DAE_BIN", env!("CARGO_BIN_EXE_dae"))
        .env("PYTHON", "python3-absent-here")
        .output()
        .expect("bash runs");
    let steps = std::fs::read_to_string(out.join("steps.tsv")).expect("steps.tsv written");
    let rows = steps
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    (status.status.code().unwrap_or(-1), rows)
}

fn declared_steps(script: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(script)).unwrap();
    text.lines()
        .filter(|l| l.trim_start().starts_with("step "))
        .count()
}

fn check_dry_run(script: &str) -> u64 {
    let tmp = scratch();
    let out = tmp.path().join("out");
    let (code, steps) = dry_run(script, &out);
    assert_eq!(code, 1, "{script}: a dry run without a GPU must fail");
    assert!(steps.len() >= declared_steps(script), "{script}: {steps:?}");
    for (name, rc, _) in &steps {
        assert_ne!(*rc, 0, "{script}: step {name} passed without a GPU");
        let text = std::fs::read_to_string(out.join(format!("{name}.txt"))).unwrap();
        // A step that needs an earlier one's output says what is missing.
        let why = [
            "no CUDA driver",
            "not found on PATH",
            "no executable",
            "no checkpoint here",
            "No such file",
        ];
        assert!(
            why.iter().any(|w| text.contains(w)),
            "{script}: {name} fails without saying why:\n{text}"
        );
    }
    assert!(out.join("env.txt").exists() && out.join("log.txt").exists());
    steps.iter().map(|s| s.2).sum()
}

#[test]
fn first_run_fits_one_call_and_fails_clearly_without_a_gpu() {
    let total = check_dry_run("benches/gpu/first-run.sh");
    assert!(
        total <= FIRST_RUN_LIMIT_S,
        "first-run.sh budgets add up to {total} s > {FIRST_RUN_LIMIT_S} s"
    );
}

#[test]
fn second_run_fits_one_call_and_fails_clearly_without_a_gpu() {
    let total = check_dry_run("benches/gpu/second-run.sh");
    assert!(
        total <= FIRST_RUN_LIMIT_S,
        "second-run.sh budgets add up to {total} s"
    );
}
