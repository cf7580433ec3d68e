//! `dae bench`: training throughput (a benchmark, not a test). For each
//! precision and batch size: a warm-up epoch, then whole epochs timed,
//! median and spread reported. Results use the `dae-bench-1` JSON schema
//! (benches/README.md), shared with the PyTorch peer script, so runs can be
//! compared (`--compare OLD.json --max-regression 5%`) and peers shown side
//! by side (`--peers torch.json`).

use crate::args::{DataArgs, DeviceChoice};
use crate::chart::{LineChart, Panel, Scale, Series};
use crate::commands::{bench_cpu, bench_gpu, bench_plan};
use crate::device::{build_backend, resolve};
use crate::progress::thousands;
use anyhow::{bail, Result};
use clap::Args;
use dae_core::rng::epoch_permutation;
use dae_core::Precision;
use dae_model::{Architecture, Silent, TrainConfig, TrainState};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::commands::bench_schema::SCHEMA;
use crate::commands::bench_schema::{
    read_results, require_overlap, BenchResults, BenchRow, DeviceName,
};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Batch sizes to measure [default: 256,4096 on the CPU; 256,1024,4096,16384,65536 on CUDA]
    #[arg(long, value_delimiter = ',')]
    pub batch_sizes: Vec<usize>,
    /// Precisions to measure [default: fp32 on the CPU; fp32,tf32,bf16 on CUDA]
    #[arg(long, value_delimiter = ',')]
    pub precisions: Vec<Precision>,
    /// Timed epochs per setting (after one warm-up epoch)
    #[arg(long, default_value_t = 3, value_parser = crate::args::positive)]
    pub repeats: usize,
    /// Encoder widths
    #[arg(long, value_parser = crate::args::parse_layers, default_value = "128,64,32")]
    pub layers: crate::args::Widths,
    /// Write the results (dae-bench-1 JSON) here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Plot samples/s against batch size (PNG), with the peers if given
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// A previous result to compare against; fails on a regression
    #[arg(long, value_name = "OLD.json")]
    pub compare: Option<PathBuf>,
    /// Largest slowdown of ms/step tolerated by --compare, e.g. 5%
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Peer results (dae-bench-1 JSON, e.g. from benches/peers/torch_ae.py) to show side by side
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub peers: Vec<PathBuf>,
    /// Copies of the training data used in turn [default: 3 on CUDA, 1 on the CPU]
    #[arg(long, value_name = "N")]
    pub rotate: Option<usize>,
    /// Per-op breakdown of one step: CUDA (time, TFLOP/s, GB/s, % of the measured ceilings) or the CPU (time, share, GFLOP/s, GB/s)
    #[arg(long)]
    pub breakdown: bool,
    /// CUDA: our GEMMs against cuBLAS on the model's shapes (batch 256 and 65,536)
    #[arg(long)]
    pub gemm: bool,
    /// No GPU needed: print each step's launches and a predicted time per
    /// kernel and per step on --card, from the launch plans
    #[arg(long)]
    pub plan: bool,
    /// The card --plan predicts for (H200, H100, A100)
    #[arg(long, default_value = "H200", value_name = "NAME")]
    pub card: String,
    /// Microseconds each launch adds inside a CUDA graph, for --plan
    #[arg(long, default_value_t = 2.0, value_name = "US")]
    pub launch_us: f64,
}

/// Most copies of the training data `--rotate` may make.
const MAX_ROTATE: usize = 64;

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("'{s}' is not a percentage like 5%"))?;
    if !(0.0..1000.0).contains(&v) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(v / 100.0)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The dae-bench-1 document `dae bench --json` writes (benches/README.md).
#[derive(Serialize)]
struct BenchReport {
    schema: &'static str,
    tool: &'static str,
    device: DeviceInfo,
    commit: String,
    date: String,
    model: String,
    samples: usize,
    data_copies_rotated: usize,
    timer: &'static str,
    settings: BenchSettings,
    results: Vec<ResultRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gemm_vs_cublas: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breakdown: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peaks: Option<Value>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DeviceInfo {
    Cuda {
        kind: &'static str,
        name: String,
        driver_cuda: Option<String>,
        nvrtc: Option<String>,
    },
    Cpu {
        kind: &'static str,
        name: String,
        threads: usize,
        /// The CPU's model name and the SIMD copy the elementwise ops run.
        cpu: String,
        simd: &'static str,
    },
}

#[derive(Serialize)]
struct BenchSettings {
    layers: Vec<usize>,
    repeats: usize,
    warmup_epochs: usize,
    seed: u64,
}

/// One (precision, batch) measured: the fields reports read and the rest.
#[derive(Serialize)]
struct ResultRow {
    #[serde(flatten)]
    row: BenchRow,
    steps_per_epoch: usize,
    ms_per_epoch: f64,
    epoch_ms_min: f64,
    epoch_ms_max: f64,
    repeats: usize,
}

impl BenchReport {
    /// This document as the reports read any dae-bench-1 document.
    fn as_results(&self) -> BenchResults {
        let name = match &self.device {
            DeviceInfo::Cuda { name, .. } | DeviceInfo::Cpu { name, .. } => name.clone(),
        };
        BenchResults {
            tool: Some(self.tool.to_string()),
            device: Some(DeviceName { name: Some(name) }),
            commit: Some(self.commit.clone()),
            date: Some(self.date.clone()),
            results: self.results.iter().map(|r| r.row.clone()).collect(),
        }
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The commit this binary was built from (see build.rs).
fn commit() -> String {
    env!("DAE_GIT_COMMIT").to_string()
}

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(b) = a.batch_sizes.iter().find(|&&b| b == 0) {
        bail!("--batch-sizes: batch size {b} must be at least 1");
    }
    if a.plan {
        let precisions = if a.precisions.is_empty() {
            Precision::ALL.to_vec()
        } else {
            a.precisions.clone()
        };
        let batches = if a.batch_sizes.is_empty() {
            vec![256, 65_536]
        } else {
            a.batch_sizes.clone()
        };
        let arch = Architecture::new(784, a.layers.0.clone())?;
        return bench_plan::run(&a.card, a.launch_us, &arch, &precisions, &batches);
    }
    let mut inputs: Vec<(&str, PathBuf)> = a
        .peers
        .iter()
        .map(|p| ("a --peers file", p.clone()))
        .collect();
    if let Some(c) = &a.compare {
        inputs.push(("the --compare file", c.clone()));
    }
    if let Ok(d) = a.data.path() {
        inputs.push(("the data", d));
    }
    for (flag, out) in [("--json", &a.json), ("--plot", &a.plot)] {
        if let Some(out) = out {
            crate::out_guard::refuse_input_as_output(flag, out, &inputs)?;
        }
    }
    // Read what we compare against first: a bad file should fail fast.
    let old = a.compare.as_deref().map(read_results).transpose()?;
    let peers: Vec<BenchResults> = a
        .peers
        .iter()
        .map(|p| read_results(p))
        .collect::<Result<Vec<_>>>()?
        .concat();
    // The widest precision asked for decides whether the CPU can serve.
    let asked = a
        .precisions
        .iter()
        .copied()
        .find(|&p| p != Precision::Fp32)
        .unwrap_or(Precision::Fp32);
    let target = resolve(a.device, asked, true)?;
    let on_gpu = target.gpu().is_some();
    if a.gemm && !on_gpu {
        bail!(
            "--gemm measures our CUDA GEMM against cuBLAS: it needs a CUDA device (--device cuda)"
        );
    }
    let batches = if a.batch_sizes.is_empty() {
        if on_gpu {
            vec![256, 1024, 4096, 16384, 65536]
        } else {
            vec![256, 4096]
        }
    } else {
        a.batch_sizes.clone()
    };
    let precisions = if a.precisions.is_empty() {
        if on_gpu {
            Precision::ALL.to_vec()
        } else {
            vec![Precision::Fp32]
        }
    } else {
        a.precisions.clone()
    };
    if let (Some(path), Some(old)) = (&a.compare, &old) {
        let names: Vec<String> = precisions.iter().map(|p| p.to_string()).collect();
        require_overlap(path, &old[0], &batches, &names)?;
    }
    let splits = a.data.load()?;
    let train = &splits.train;
    let arch = Architecture::new(train.dim, a.layers.0.clone())?;
    // Separate copies of the data, used in turn, so a dataset that fits in
    // the GPU's L2 (Fashion-MNIST's 47 MB in an H100's 50 MB) cannot flatter
    // the numbers by staying cached from one epoch to the next.
    let rotate = a.rotate.unwrap_or(if on_gpu { 3 } else { 1 }).max(1);
    // Each copy holds its own labels: a huge count would be a memory bomb.
    if rotate > MAX_ROTATE {
        bail!("--rotate {rotate}: at most {MAX_ROTATE} copies of the data");
    }
    // The first is the loaded set itself; only the extra ones are copies.
    let copies: Vec<Cow<dae_data::Dataset>> = std::iter::once(Cow::Borrowed(train))
        .chain((1..rotate).map(|_| Cow::Owned(train.clone())))
        .collect();
    let mut results = Vec::new();
    let mut device = String::new();
    say!(
        "{:<6}{:>8} {:>12} {:>12} {:>14} {:>8}",
        "prec",
        "batch",
        "ms/epoch",
        "ms/step",
        "samples/s",
        "spread"
    );
    for precision in &precisions {
        for &batch in &batches {
            let cfg = TrainConfig {
                batch,
                precision: *precision,
                ..TrainConfig::lab()
            };
            let state = TrainState::initialize(&arch, cfg.seed);
            let mut backend = build_backend(&target, &arch, &cfg, state)?;
            device = backend.device();
            let steps = cfg.steps_per_epoch(train.rows);
            let mut times = Vec::new();
            // Epoch 0 warms caches, thread pools, compiled kernels and
            // graphs (one per copy); then the timed epochs rotate copies.
            for epoch in 0..=a.repeats {
                let perm = epoch_permutation(cfg.seed, epoch as u64, train.rows);
                if epoch == 0 {
                    for copy in &copies[1..] {
                        backend.train_epoch(copy, &perm, batch, &mut Silent)?;
                    }
                }
                let data = &copies[epoch % copies.len()];
                let start = Instant::now();
                backend.train_epoch(data, &perm, batch, &mut Silent)?;
                // Device events where the device has them; otherwise the
                // host clock (the epoch ends by reading the loss back).
                let ms = backend
                    .last_epoch_device_ms()
                    .unwrap_or(start.elapsed().as_secs_f64() * 1e3);
                if epoch > 0 {
                    times.push(ms);
                }
            }
            let lo = times.iter().cloned().fold(f64::MAX, f64::min);
            let hi = times.iter().cloned().fold(0.0, f64::max);
            let ms = median(&mut times);
            let rate = train.rows as f64 / (ms / 1e3);
            say!(
                "{precision:<6}{batch:>8} {ms:>12.2} {:>12.4} {:>14} {:>7.1}%",
                ms / steps as f64,
                thousands(rate),
                (hi - lo) / ms * 100.0
            );
            results.push(ResultRow {
                row: BenchRow {
                    batch: batch as u64,
                    precision: precision.to_string(),
                    ms_per_step: ms / steps as f64,
                    samples_per_second: rate,
                },
                steps_per_epoch: steps,
                ms_per_epoch: ms,
                epoch_ms_min: lo,
                epoch_ms_max: hi,
                repeats: a.repeats,
            });
        }
    }
    // Read once, for the line and the report.
    let (cpu, simd) = (dae_core::cpu::cpu_model(), dae_core::cpu::simd_level());
    let cpu_named = if on_gpu {
        String::new()
    } else {
        format!(" on {cpu}, {simd}")
    };
    say!(
        "device: {device}{cpu_named}; model {}; {} training samples",
        arch.describe(),
        train.rows
    );
    let device_info = if on_gpu {
        let v = |r: dae_core::Result<(i32, i32)>| r.ok().map(|(a, b)| format!("{a}.{b}"));
        DeviceInfo::Cuda {
            kind: "cuda",
            name: device,
            driver_cuda: v(dae_core::cuda::driver_version()),
            nvrtc: v(dae_core::cuda::nvrtc_version()),
        }
    } else {
        DeviceInfo::Cpu {
            kind: "cpu",
            name: device,
            threads: rayon_threads(),
            cpu,
            simd,
        }
    };
    let mut doc = BenchReport {
        schema: SCHEMA,
        tool: "dae",
        device: device_info,
        commit: commit(),
        date: crate::run_dir::utc_now(),
        model: arch.describe(),
        samples: train.rows,
        data_copies_rotated: rotate,
        timer: if on_gpu {
            "CUDA events around each epoch's launches"
        } else {
            "host clock around whole epochs"
        },
        settings: BenchSettings {
            layers: a.layers.0.clone(),
            repeats: a.repeats,
            warmup_epochs: 1,
            seed: TrainConfig::lab().seed,
        },
        results,
        gemm_vs_cublas: None,
        breakdown: None,
        peaks: None,
    };
    // A breakdown profiles the smallest and largest batch asked for.
    let mut breakdown_sizes = vec![batches[0], *batches.last().unwrap()];
    breakdown_sizes.dedup();
    if a.breakdown && !on_gpu {
        let b = breakdown_sizes
            .iter()
            .map(|&batch| bench_cpu::breakdown(&arch, train, batch))
            .collect::<Result<Vec<_>>>()?;
        doc.breakdown = Some(Value::Array(b));
    } else if a.breakdown || a.gemm {
        let ps = precisions.clone();
        let gpu = target.gpu().expect("checked on_gpu above");
        let peaks = bench_gpu::peaks(gpu, &ps)?;
        if a.gemm {
            doc.gemm_vs_cublas = Some(bench_gpu::gemm_vs_cublas(gpu, &arch, &[256, 65_536], &ps)?);
        }
        if a.breakdown {
            let mut b = Vec::new();
            for &p in &ps {
                for &batch in &breakdown_sizes {
                    b.push(bench_gpu::breakdown(gpu, &arch, train, batch, p, &peaks)?);
                }
            }
            doc.breakdown = Some(Value::Array(b));
        }
        doc.peaks = Some(peaks);
    }
    if let Some(path) = &a.json {
        dae_data::write_atomically(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    let ours = doc.as_results();
    if !peers.is_empty() {
        print_peers(&ours, &peers);
    }
    if let Some(path) = &a.plot {
        plot_throughput(&ours, &peers, path)?;
    }
    if let Some(old) = old {
        compare(&ours, &old[0], a.max_regression)?;
    }
    Ok(())
}

pub(crate) fn print_peers(ours: &BenchResults, peers: &[BenchResults]) {
    say!("\nside by side (samples/s; ratio = dae / peer, > 1 means dae is faster)");
    say_part!("{:<6}{:>8} {:>14}", "prec", "batch", "dae");
    for p in peers {
        say_part!(" {:>18} {:>7}", p.tool.as_deref().unwrap_or("?"), "ratio");
    }
    say!();
    for r in &ours.results {
        let (batch, precision) = (r.batch, r.precision.as_str());
        let mine = r.samples_per_second;
        say_part!("{precision:<6}{batch:>8} {:>14}", thousands(mine));
        for p in peers {
            match p.find(batch, precision).map(|x| x.samples_per_second) {
                Some(theirs) => say_part!(" {:>18} {:>6.2}x", thousands(theirs), mine / theirs),
                None => say_part!(" {:>18} {:>7}", "-", ""),
            }
        }
        say!();
    }
}

pub(crate) fn plot_throughput(
    ours: &BenchResults,
    peers: &[BenchResults],
    path: &Path,
) -> Result<()> {
    let mut series = Vec::new();
    for doc in std::iter::once(ours).chain(peers) {
        let mut precisions: Vec<&str> = doc.results.iter().map(|r| r.precision.as_str()).collect();
        precisions.dedup();
        for p in precisions {
            series.push(Series {
                name: format!("{} {p}", doc.tool.as_deref().unwrap_or("?")),
                points: doc
                    .results
                    .iter()
                    .filter(|r| r.precision == p)
                    .map(|r| (r.batch as f64, r.samples_per_second))
                    .collect(),
            });
        }
    }
    LineChart {
        title: format!(
            "training throughput, {}",
            ours.device
                .as_ref()
                .and_then(|d| d.name.as_deref())
                .unwrap_or("")
        ),
        x_label: "batch size".into(),
        x_scale: Scale::Log2,
        panels: vec![Panel {
            y_label: "samples/s".into(),
            y_scale: Scale::Log10,
            series,
        }],
    }
    .render_png(path)
}

/// Fails when any (batch, precision) present in both got slower per step
/// than `max` allows.
pub(crate) fn compare(new: &BenchResults, old: &BenchResults, max: f64) -> Result<()> {
    say!(
        "\nagainst {} ({}):",
        old.commit.as_deref().unwrap_or("?"),
        old.date.as_deref().unwrap_or("?")
    );
    let mut regressions = Vec::new();
    let mut compared = 0;
    for r in &new.results {
        let (batch, precision) = (r.batch, r.precision.as_str());
        let Some(o) = old.find(batch, precision) else {
            continue;
        };
        compared += 1;
        let (now, before) = (r.ms_per_step, o.ms_per_step);
        let change = now / before - 1.0;
        let verdict = if change > max { "REGRESSION" } else { "ok" };
        say!(
            "{precision:<6}{batch:>8} {before:>10.4} -> {now:>10.4} ms/step {:>+7.1}% {verdict}",
            change * 100.0
        );
        if change > max {
            regressions.push(format!(
                "{precision} batch {batch}: {:+.1}%",
                change * 100.0
            ));
        }
    }
    if compared == 0 {
        bail!("--compare: no setting measured now has a row in the old result");
    }
    if !regressions.is_empty() {
        bail!(
            "{} setting(s) slower than the {:.1}% allowed: {}",
            regressions.len(),
            max * 100.0,
            regressions.join(", ")
        );
    }
    Ok(())
}

/// Fuzz target for the reports read back (issue 10): mutated dae-bench-1
/// documents through the reader and then every report that uses them
/// (compare, peers table, plot), which must fail cleanly or work, never
/// panic.
#[cfg(test)]
mod fuzz_reports {
    use super::*;
    use crate::commands::bench_schema::parse_results;
    use dae_data::testing::fuzz;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "schema": SCHEMA, "tool": "dae", "device": {"name": "cpu"},
            "commit": "x", "date": "d",
            "results": [
                {"batch": 256, "precision": "fp32", "ms_per_step": 1.5, "samples_per_second": 9000.0},
                {"batch": 4096, "precision": "fp32", "ms_per_step": 9.5, "samples_per_second": 19000.0},
            ],
        })
    }

    fn any_value(m: &mut fuzz::Mutator) -> Value {
        match m.below(9) {
            0 => Value::Null,
            1 => json!("fast"),
            2 => json!(-((m.number() >> 1) as i64)),
            3 => json!(m.number() as f64 / 7.0),
            4 => json!([]),
            5 => json!({}),
            6 => json!(true),
            7 => json!(0),
            _ => json!(m.number()),
        }
    }

    fn mutated(m: &mut fuzz::Mutator) -> Vec<u8> {
        let mut doc = valid();
        match m.below(5) {
            0 => {
                let i = m.below(2);
                let fields = ["batch", "precision", "ms_per_step", "samples_per_second"];
                let f = fields[m.below(fields.len())];
                if m.chance(3) {
                    doc["results"][i].as_object_mut().unwrap().remove(f);
                } else {
                    doc["results"][i][f] = any_value(m);
                }
            }
            1 => doc["results"] = any_value(m),
            2 => {
                let f = ["schema", "tool", "device", "commit"][m.below(4)];
                doc[f] = any_value(m);
            }
            3 => doc = json!([doc, any_value(m)]),
            _ => {}
        }
        let mut bytes = serde_json::to_vec(&doc).unwrap();
        if m.chance(3) {
            m.mutate_bytes(&mut bytes);
        }
        bytes
    }

    #[test]
    fn fuzz_bench_reports() {
        let dir = tempfile::tempdir().unwrap();
        let ours = parse_results(&valid().to_string(), "ours.json")
            .unwrap()
            .remove(0);
        fuzz::run("bench-json", 6, fuzz::cases(1500), mutated, |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let docs = parse_results(&text, "old.json")?;
            compare(&ours, &docs[0], 0.05).ok();
            print_peers(&ours, &docs);
            if bytes.len() % 8 == 0 {
                plot_throughput(&ours, &docs, &dir.path().join("p.png"))?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
}
