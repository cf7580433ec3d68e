//! `dae bench --device cpu --breakdown`: where a CPU step's time goes, op
//! by op (each op repeated alone and timed by the wall clock, the whole
//! step timed as one pass), so a change to the CPU path is aimed at the
//! ops that cost and its gain can be predicted before it is measured.

use anyhow::Result;
use dae_data::Dataset;
use dae_model::{Architecture, CpuBackend, TrainConfig, TrainState};
use serde_json::{json, Value};

/// Prints and returns the per-op profile of one step of `batch` rows.
pub fn breakdown(arch: &Architecture, train: &Dataset, batch: usize) -> Result<Value> {
    let cfg = TrainConfig {
        batch,
        ..TrainConfig::lab()
    };
    let state = TrainState::initialize(arch, cfg.seed);
    let mut backend = CpuBackend::new(arch, cfg.adam(), batch, state)?.clocked();
    let profile = backend.profile_step(train, batch.min(train.rows))?;
    let total = profile.kernel_ms();
    say!("\nstep breakdown on the CPU: batch {batch}, fp32 (each op alone, its operands warm in cache)");
    say!(
        "{:<22}{:>10}{:>9}{:>10}{:>9}",
        "op",
        "µs",
        "% ops",
        "GFLOP/s",
        "GB/s"
    );
    let mut ops = Vec::new();
    for o in &profile.ops {
        let gflops = o.flops / (o.ms * 1e-3) / 1e9;
        let gbps = o.bytes / (o.ms * 1e-3) / 1e9;
        say!(
            "{:<22}{:>10.1}{:>8.1}%{:>10.1}{:>9.1}",
            o.name,
            o.ms * 1e3,
            100.0 * o.ms / total,
            gflops,
            gbps
        );
        ops.push(
            json!({"op": o.name, "ms": o.ms, "flops": o.flops, "bytes": o.bytes,
                        "gflops": gflops, "gbps": gbps}),
        );
    }
    say!(
        "step (one pass) {:.1} µs; its ops alone sum to {:.1} µs",
        profile.step_ms * 1e3,
        total * 1e3
    );
    Ok(json!({"device": "cpu", "batch": batch, "precision": "fp32",
              "step_ms": profile.step_ms, "ops_ms": total, "ops": ops}))
}
