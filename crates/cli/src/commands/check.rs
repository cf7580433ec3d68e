//! `dae check`: the GPU kernel regression suite, then one train step and one
//! epoch GPU against CPU. Prints a table, writes JSON, exits non-zero on any
//! failure. Built with `--features emulator`, `--device emulator` runs the
//! same suite on the host emulator (crates/emu), no GPU needed.

use crate::args::DataArgs;
use anyhow::{bail, Result};
use clap::Args;
use dae_core::cuda::check::{kernel_cases, CaseResult};
use dae_core::cuda::{nvrtc_version, Gpu, KernelDevice, Precision};
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
    /// Where the kernels run: `cuda`, or `emulator` (kernels/*.cu on the
    /// host CPU with an H100's 132-SM launch plans; needs a dae built with
    /// `--features emulator`)
    #[arg(long, default_value = "cuda", value_name = "DEVICE")]
    pub device: String,
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
    match a.device.as_str() {
        "cuda" => {
            // Libraries and device first: cudarc panics on a missing NVRTC.
            dae_core::cuda_status().map_err(anyhow::Error::msg)?;
            suite(&a, Gpu::open, Some(nvrtc_version()?))
        }
        "emulator" => emulated(&a),
        other => bail!("unknown device '{other}' for dae check (cuda or emulator)"),
    }
}

#[cfg(feature = "emulator")]
fn emulated(a: &CheckArgs) -> Result<()> {
    suite(a, || Ok(dae_emu::Emulator::new(132)), None)
}

#[cfg(not(feature = "emulator"))]
fn emulated(_: &CheckArgs) -> Result<()> {
    bail!("this dae was built without the emulator: build it with `cargo build --features emulator -p dae-cli` (needs a C++ compiler)")
}

/// The whole suite on devices from `open` (one for the kernel cases, one
/// per model-level comparison).
fn suite<D: KernelDevice>(
    a: &CheckArgs,
    open: impl Fn() -> Result<D>,
    nvrtc: Option<(i32, i32)>,
) -> Result<()> {
    let started = Instant::now();
    let dev = open()?;
    let nvrtc_text = nvrtc.map_or("none".to_string(), |v| format!("{}.{}", v.0, v.1));
    println!("device: {}; NVRTC {nvrtc_text}", dev.describe());
    println!(
        "{:<5} {:<32} {:<5} {:<28} {:>10} {:>9} twice",
        "", "case", "prec", "shape", "rel error", "tol"
    );
    let mut all = kernel_cases(&dev, !a.quick)?;
    all.iter().for_each(print_case);
    drop(dev);
    let splits = a.data.load()?;
    let train = splits.train.head(a.epoch_rows);
    let validation = splits.test.head(2_000);
    for p in Precision::ALL {
        let cases = gpu_check::train_step(&open, &splits.train, p, 256, 7)?;
        cases.iter().for_each(print_case);
        all.extend(cases);
        let cases = gpu_check::epoch(&open, &train, &validation, p, 256, 7)?;
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
            json!({"device": a.device, "nvrtc": nvrtc_text, "cases": cases, "failed": failed});
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
