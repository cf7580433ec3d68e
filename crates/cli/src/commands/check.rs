//! `dae check`: the GPU kernel regression suite, then one train step and one
//! epoch GPU against CPU. Prints a table, writes JSON, exits non-zero on any
//! failure.

use crate::args::DataArgs;
use anyhow::{bail, Result};
use clap::Args;
use dae_core::cuda::check::{kernel_cases, CaseResult};
use dae_core::cuda::{nvrtc_version, Gpu, Precision};
use dae_model::gpu_check;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Skip the 65,536-row products
    #[arg(long)]
    pub quick: bool,
    /// Rows of the training set used for the whole-epoch comparison
    #[arg(long, default_value_t = 10_000)]
    pub epoch_rows: usize,
    /// Write every case as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

fn print_case(c: &CaseResult) {
    println!(
        "{:<5} {:<32} {:<5} {:<28} {:>10.2e} {:>9.1e} {}",
        if c.passed() { "ok" } else { "FAIL" },
        c.kernel,
        c.precision,
        c.shape,
        c.rel_error,
        c.tolerance,
        if c.deterministic {
            "same bits"
        } else {
            "BITS DIFFER"
        }
    );
}

pub fn run(a: CheckArgs) -> Result<()> {
    let started = Instant::now();
    let gpu = Gpu::open()?;
    let nvrtc = nvrtc_version()?;
    println!("device: {}; NVRTC {}.{}", gpu.describe(), nvrtc.0, nvrtc.1);
    println!(
        "{:<5} {:<32} {:<5} {:<28} {:>10} {:>9} twice",
        "", "case", "prec", "shape", "rel error", "tol"
    );
    let mut all = kernel_cases(&gpu, !a.quick)?;
    all.iter().for_each(print_case);
    drop(gpu);
    let splits = a.data.load()?;
    let train = splits.train.head(a.epoch_rows);
    let validation = splits.test.head(2_000);
    for p in Precision::ALL {
        let cases = gpu_check::train_step(Gpu::open, &splits.train, p, 256, 7)?;
        cases.iter().for_each(print_case);
        all.extend(cases);
        let cases = gpu_check::epoch(Gpu::open, &train, &validation, p, 256, 7)?;
        cases.iter().for_each(print_case);
        all.extend(cases);
    }
    let failed = all.iter().filter(|c| !c.passed()).count();
    println!(
        "{} cases: {} passed, {} failed ({:.1}s)",
        all.len(),
        all.len() - failed,
        failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &a.json {
        let cases: Vec<_> = all
            .iter()
            .map(|c| {
                json!({"case": c.kernel, "precision": c.precision, "shape": c.shape,
                       "rel_error": if c.rel_error.is_finite() { json!(c.rel_error) } else { json!("inf") },
                       "tolerance": c.tolerance, "deterministic": c.deterministic, "passed": c.passed()})
            })
            .collect();
        let doc =
            json!({"nvrtc": format!("{}.{}", nvrtc.0, nvrtc.1), "cases": cases, "failed": failed});
        dae_model::checkpoint::write_atomically(
            path,
            serde_json::to_string_pretty(&doc)?.as_bytes(),
        )?;
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", all.len());
    }
    Ok(())
}
