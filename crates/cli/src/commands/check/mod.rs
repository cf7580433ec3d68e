//! `dae check`: the GPU kernel regression suite, then one train step and one
//! epoch device against CPU. Seeded (`--seed`), selectable (`--case`,
//! `--precision`, `--shape`), with every failing case's first mismatches;
//! a JSON report (`--json`), JUnit XML (`--junit`), drift against an earlier
//! report (`--compare`) and device timings against the floors (`--bench`).
//! Built with `--features emulator`, `--device emulator` runs the same
//! suite on the host emulator (crates/emu), no GPU needed.

mod compare;
mod report;

use crate::args::DataArgs;
use anyhow::{bail, Result};
use clap::Args;
use dae_core::ceilings::Ceilings;
use dae_core::check::{
    groups, kernel_cases_with, list_groups, parse_shape, CaseKey, CaseResult, Goldens, Options,
    Selection, DEFAULT_SEED,
};
use dae_core::{HostDevice, KernelDevice, Precision};
use dae_model::gpu_check;
use report::Report;
use std::path::PathBuf;
use std::time::Instant;

/// The batch of the model-level cases.
const MODEL_BATCH: usize = 256;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Skip the 65,536-row products (reported as skipped)
    #[arg(long)]
    pub quick: bool,
    /// Rows of the training set used for the whole-epoch comparison
    #[arg(long, default_value_t = 10_000)]
    pub epoch_rows: usize,
    /// The suite seed: every case's inputs derive from it and the case's
    /// own name, so a case run alone sees the same numbers as in the suite
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Run only the cases whose name contains PATTERN ('*' as a wildcard
    /// over the whole name, '|' between alternatives), e.g. "gemm_dx",
    /// "adam p*", "step dW*", "bias_grad|adam"
    #[arg(long, value_name = "PATTERN")]
    pub case: Option<String>,
    /// Run only the cases of one precision (fp32, tf32, bf16)
    #[arg(long, value_name = "P")]
    pub precision: Option<String>,
    /// Run only the cases of one shape, e.g. 256x128x784 (M×N×K) or 1000
    #[arg(long, value_name = "MxNxK")]
    pub shape: Option<String>,
    /// Print the selected cases and exit without running them
    #[arg(long)]
    pub list: bool,
    /// Also time each selected kernel case with device events, against
    /// its floor on this card
    #[arg(long)]
    pub bench: bool,
    /// Write the report as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML here: one testcase per case, classname by kernel family
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Compare with an earlier JSON report: fail when a case that passed
    /// now fails or its error grew by more than --max-growth
    #[arg(long, value_name = "OLD.json")]
    pub compare: Option<PathBuf>,
    /// The error growth --compare tolerates (a factor ≥ 1)
    #[arg(long, default_value_t = 2.0, value_name = "FACTOR")]
    pub max_growth: f64,
    /// Write the bit-deterministic cases' outputs here as a goldens file
    /// (run on the emulator to refresh crates/core/goldens/)
    #[arg(long, value_name = "FILE")]
    pub record_goldens: Option<PathBuf>,
    /// Where the kernels run: `cuda`, or `emulator` (kernels/*.cu on the
    /// host CPU with an H100's 132-SM launch plans; needs a dae built with
    /// `--features emulator`)
    #[arg(long, default_value = "cuda", value_name = "DEVICE")]
    pub device: String,
    /// With --device emulator: count shared-memory wavefronts and global
    /// sectors per warp request, per kernel and instruction site; print
    /// the table and add it to the --json report as "emulator_trace"
    #[arg(long)]
    pub trace: bool,
}

pub fn run(a: CheckArgs) -> Result<()> {
    let sel = selection(&a)?;
    if !(a.max_growth.is_finite() && a.max_growth >= 1.0) {
        bail!(
            "--max-growth {} must be a factor of at least 1",
            a.max_growth
        );
    }
    if a.trace && a.device != "emulator" {
        bail!("--trace counts the emulator's memory traffic: use it with --device emulator");
    }
    // No report may replace an input, or another report of this run.
    let mut inputs: Vec<(&str, PathBuf)> = Vec::new();
    if let Some(c) = &a.compare {
        inputs.push(("the --compare report", c.clone()));
    }
    if let Ok(d) = a.data.path() {
        inputs.push(("the data", d));
    }
    for (flag, out) in [
        ("--json", &a.json),
        ("--junit", &a.junit),
        ("--record-goldens", &a.record_goldens),
    ] {
        if let Some(out) = out {
            crate::out_guard::refuse_input_as_output(flag, out, &inputs)?;
            inputs.push((flag, out.clone()));
        }
    }
    // Read the earlier report first: a bad one fails before anything runs.
    let baseline = a
        .compare
        .as_deref()
        .map(compare::Baseline::load)
        .transpose()?;
    let selected = selected_keys(&a, &sel)?;
    if a.list {
        for k in &selected {
            say!(
                "{:<12} {:<44} {:<5} {}",
                k.family,
                k.name,
                k.precision,
                k.shape
            );
        }
        say!("{} cases", selected.len());
        return Ok(());
    }
    match a.device.as_str() {
        "cuda" => {
            // Opened once (libraries checked first: cudarc panics on a
            // missing NVRTC); every backend of the suite shares it.
            let gpu = std::rc::Rc::new(crate::device::open_gpu()?);
            suite(&a, &sel, || Ok(gpu.clone()), baseline)
        }
        "emulator" => emulated(&a, &sel, baseline),
        other => bail!("unknown device '{other}' for dae check (cuda or emulator)"),
    }
}

#[cfg(feature = "emulator")]
fn emulated(a: &CheckArgs, sel: &Selection, baseline: Option<compare::Baseline>) -> Result<()> {
    use dae_emu::Emulator;
    if !a.trace {
        return suite(a, sel, || Ok(Emulator::new(132)), baseline);
    }
    let result = suite(a, sel, || Ok(Emulator::new(132).with_trace()), baseline);
    // The counters are the process's: any emulator's take_trace reads them.
    let rows = Emulator::new(132).take_trace();
    println!("emulator trace: per kernel and site, one warp's execution = one request");
    println!(
        "{:<22} {:>4} {:>2} {:>9} {:>7} {:>8} {:>8}  site",
        "kernel", "kind", "B", "requests", "wf/req", "sect/req", "line/req"
    );
    let per = |x: u64, n: u64| x as f64 / n.max(1) as f64;
    for r in &rows {
        let kind = format!(
            "{}{}",
            if r.shared { "sh" } else { "gl" },
            if r.store { "st" } else { "ld" }
        );
        println!(
            "{:<22} {kind:>4} {:>2} {:>9} {:>7.2} {:>8.2} {:>8.2}  {}",
            r.kernel,
            r.width,
            r.requests,
            per(r.wavefronts, r.requests),
            per(r.sectors, r.requests),
            per(r.lines, r.requests),
            r.site
        );
    }
    if let (Some(path), true) = (&a.json, result.is_ok()) {
        // Added to the report suite() wrote.
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        doc["emulator_trace"] = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "kernel": r.kernel, "site": r.site,
                    "space": if r.shared { "shared" } else { "global" },
                    "op": if r.store { "st" } else { "ld" }, "bytes_per_lane": r.width,
                    "requests": r.requests, "wavefronts": r.wavefronts,
                    "sectors": r.sectors, "lines": r.lines, "bytes": r.bytes,
                })
            })
            .collect();
        dae_data::write_atomically(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    result
}

#[cfg(not(feature = "emulator"))]
fn emulated(_: &CheckArgs, _: &Selection, _: Option<compare::Baseline>) -> Result<()> {
    bail!("this dae was built without the emulator: build it with `cargo build --features emulator -p dae-cli` (needs a C++ compiler)")
}

fn selection(a: &CheckArgs) -> Result<Selection> {
    if a.case.as_deref().is_some_and(|c| c.trim().is_empty()) {
        bail!("--case needs a pattern (a part of a case name; see dae check --list)");
    }
    Ok(Selection {
        case: a.case.clone(),
        precision: a.precision.as_deref().map(Precision::parse).transpose()?,
        shape: a.shape.as_deref().map(parse_shape).transpose()?,
    })
}

/// Every case of the suite under these flags (kernel and model-level),
/// filtered by the selection; an empty selection is an error.
fn selected_keys(a: &CheckArgs, sel: &Selection) -> Result<Vec<CaseKey>> {
    // Listing launches nothing: the host stands in for the device.
    let mut keys = list_groups(&HostDevice::new(132), &groups());
    for p in Precision::ALL {
        keys.extend(gpu_check::model_keys(784, p, MODEL_BATCH, a.epoch_rows)?);
    }
    let keys: Vec<CaseKey> = keys.into_iter().filter(|k| sel.matches(k)).collect();
    if keys.is_empty() {
        let mut what = Vec::new();
        if let Some(c) = &sel.case {
            what.push(format!("--case '{c}'"));
        }
        if let Some(p) = sel.precision {
            what.push(format!("--precision {}", p.name()));
        }
        if let Some(s) = &sel.shape {
            what.push(format!("--shape {s}"));
        }
        bail!(
            "no case matches {} (dae check --list shows every case)",
            what.join(" ")
        );
    }
    Ok(keys)
}

fn print_case(c: &CaseResult) {
    say!("{}", c.row());
    for line in c.mismatch_lines() {
        say!("      {line}");
    }
}

/// The whole suite on devices from `open` (one for the kernel cases, one
/// per model-level run).
fn suite<D: KernelDevice>(
    a: &CheckArgs,
    sel: &Selection,
    open: impl Fn() -> dae_core::Result<D>,
    baseline: Option<compare::Baseline>,
) -> Result<()> {
    let started = Instant::now();
    let dev = open()?;
    if a.bench && dev.timed(|| Ok::<(), dae_core::Error>(()))?.1.is_none() {
        bail!(
            "--bench times kernels with device events, and {} has none: run it on a GPU",
            dev.describe()
        );
    }
    let info = dev.info();
    let report_header = report::Header::new(&info, a.seed, sel, a.quick);
    say!("{}", report_header.describe());
    let goldens = Goldens::embedded()?;
    let applies = goldens.apply_to(info.sm_count, a.seed);
    say!(
        "goldens: {} (the emulator's bits at {} SMs, seed {}, {} cases)",
        if applies {
            "compared"
        } else {
            "not compared: they hold for that plan and seed only"
        },
        goldens.sm_count,
        goldens.seed,
        goldens.len()
    );
    say!("{}", CaseResult::header());
    let opts = Options {
        bench: a.bench,
        goldens: applies.then_some(&goldens),
        record: a.record_goldens.is_some(),
    };
    let run = kernel_cases_with(&dev, a.seed, sel, !a.quick, &opts)?;
    let mut all = run.results;
    all.iter().for_each(print_case);
    if let Some(path) = &a.record_goldens {
        let bytes = Goldens::serialize(a.seed, info.sm_count, &run.recorded)?;
        dae_data::write_atomically(path, &bytes)?;
        say!(
            "goldens: {} cases written to {}",
            run.recorded.len(),
            path.display()
        );
    }
    drop(dev);
    let model_selected = Precision::ALL.iter().any(|&p| {
        gpu_check::model_keys(784, p, MODEL_BATCH, a.epoch_rows)
            .is_ok_and(|keys| keys.iter().any(|k| sel.matches(k)))
    });
    if model_selected {
        let splits = a.data.load()?;
        let train = splits.train.head(a.epoch_rows);
        let validation = splits.test.head(2_000);
        for p in Precision::ALL {
            let cases = gpu_check::train_step(&open, &splits.train, p, MODEL_BATCH, a.seed, sel)?;
            cases.iter().for_each(print_case);
            all.extend(cases);
            let cases = gpu_check::epoch(&open, &train, &validation, p, MODEL_BATCH, a.seed, sel)?;
            cases.iter().for_each(print_case);
            all.extend(cases);
        }
    }
    if a.bench {
        print_timings(&all, &info.name);
    }
    let report = Report {
        header: report_header,
        cases: all,
        seconds: started.elapsed().as_secs_f64(),
    };
    let (passed, failed, skipped) = report.counts();
    let golden_failures = report
        .cases
        .iter()
        .filter(|c| c.differs_from_golden())
        .count();
    say!(
        "{} cases: {passed} passed, {failed} failed ({golden_failures} of them differ from the goldens), {skipped} skipped ({:.1}s, seed {})",
        report.cases.len(),
        report.seconds,
        a.seed
    );
    if let Some(path) = &a.json {
        dae_data::write_atomically(path, report.to_json()?.as_bytes())?;
    }
    if let Some(path) = &a.junit {
        dae_data::write_atomically(path, report.to_junit().as_bytes())?;
    }
    let drift = baseline
        .map(|b| b.compare(&report.cases, a.max_growth))
        .transpose()?;
    if failed > 0 {
        bail!(
            "{failed} of {} checks failed (seed {})",
            passed + failed,
            a.seed
        );
    }
    if let Some(d) = drift {
        d.verdict()?;
    }
    Ok(())
}

/// The timed cases against this card's floors.
fn print_timings(cases: &[CaseResult], device: &str) {
    let ceilings = Ceilings::for_device(device);
    say!(
        "\ntimings (median of 5 × 20 launches, device events; floors from the {} datasheet):",
        ceilings.map_or("(unknown card: no floors)", |c| c.card)
    );
    say!(
        "{:<40} {:<5} {:<14} {:>10} {:>10} {:>8} {:>9} {:>9}",
        "case",
        "prec",
        "shape",
        "µs",
        "floor µs",
        "×floor",
        "GB/s",
        "TFLOP/s"
    );
    for c in cases {
        let Some(t) = &c.timing else { continue };
        let floor = ceilings.map(|x| x.floor_ms(t.flops, t.bytes, t.precision) * 1e3);
        say!(
            "{:<40} {:<5} {:<14} {:>10.2} {:>10} {:>8} {:>9.0} {:>9.2}",
            c.key.name,
            c.key.precision,
            c.key.shape,
            t.ms * 1e3,
            floor.map_or("-".into(), |f| format!("{f:.2}")),
            floor.map_or("-".into(), |f| format!("{:.1}", t.ms * 1e3 / f)),
            t.bytes / (t.ms * 1e-3) / 1e9,
            t.flops / (t.ms * 1e-3) / 1e12
        );
    }
}
