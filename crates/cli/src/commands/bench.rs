//! `dae bench`: training throughput of the lab's model (a benchmark, not a
//! test). Warm-up first, then whole epochs timed, median and spread reported.

use crate::args::{DataArgs, DeviceChoice};
use crate::device::create_backend;
use anyhow::{bail, Result};
use clap::Args;
use dae_core::rng::epoch_permutation;
use dae_model::{Architecture, StepObserver, TrainConfig, TrainState};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Batch sizes to measure
    #[arg(long, value_delimiter = ',', default_value = "256,4096")]
    pub batch_sizes: Vec<usize>,
    /// Timed epochs per batch size (after one warm-up epoch)
    #[arg(long, default_value_t = 3, value_parser = crate::args::positive)]
    pub repeats: usize,
    /// Encoder widths
    #[arg(long, value_parser = crate::args::parse_layers, default_value = "128,64,32")]
    pub layers: crate::args::Widths,
    /// Write the results as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

struct Silent;
impl StepObserver for Silent {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(b) = a.batch_sizes.iter().find(|&&b| b == 0) {
        bail!("--batch-sizes: batch size {b} must be at least 1");
    }
    let splits = a.data.load()?;
    let train = &splits.train;
    let arch = Architecture::new(train.dim, a.layers.0.clone())?;
    let mut results = Vec::new();
    let mut device = String::new();
    println!(
        "{:>8} {:>12} {:>12} {:>14} {:>10}",
        "batch", "ms/epoch", "ms/step", "samples/s", "spread"
    );
    for &batch in &a.batch_sizes {
        let cfg = TrainConfig {
            batch,
            ..TrainConfig::lab()
        };
        let state = TrainState::initialize(&arch, cfg.seed);
        let mut backend = create_backend(a.device, &arch, &cfg, state, true)?;
        device = backend.device();
        let steps = cfg.steps_per_epoch(train.rows);
        let mut times = Vec::new();
        // Epoch 0 warms caches, thread pools and (on the GPU) compiled kernels.
        for epoch in 0..=a.repeats {
            let perm = epoch_permutation(cfg.seed, epoch as u64, train.rows);
            let start = Instant::now();
            backend.train_epoch(train, &perm, batch, &mut Silent)?;
            if epoch > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (lo, hi) = (
            times.iter().cloned().fold(f64::MAX, f64::min),
            times.iter().cloned().fold(0.0, f64::max),
        );
        let ms = median(&mut times);
        let rate = train.rows as f64 / (ms / 1e3);
        let spread = (hi - lo) / ms * 100.0;
        println!(
            "{batch:>8} {ms:>12.1} {:>12.3} {:>14} {:>9.1}%",
            ms / steps as f64,
            crate::progress::thousands(rate),
            spread
        );
        results.push(json!({
            "batch": batch, "steps_per_epoch": steps, "ms_per_epoch": ms,
            "ms_per_step": ms / steps as f64, "samples_per_second": rate,
            "epoch_ms_min": lo, "epoch_ms_max": hi, "repeats": a.repeats,
        }));
    }
    println!(
        "device: {device}; model {}; {} training samples",
        arch.describe(),
        train.rows
    );
    if let Some(path) = a.json {
        let doc = json!({
            "device": device, "architecture": arch.describe(), "samples": train.rows,
            "precision": "fp32", "timer": "host clock around whole epochs",
            "results": results,
        });
        dae_model::checkpoint::write_atomically(
            &path,
            serde_json::to_string_pretty(&doc)?.as_bytes(),
        )?;
    }
    Ok(())
}
