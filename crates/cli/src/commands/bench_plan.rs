//! `dae bench --plan`: without a GPU, each train step's launches and a
//! predicted time per kernel and per step on a named card
//! (dae_core::predict states the model), so the first hardware run
//! can set measurement against prediction kernel by kernel.

use anyhow::{anyhow, Result};
use dae_core::ceilings::Ceilings;
use dae_core::ops::Offset;
use dae_core::predict::{predict_op, Model, OpPrediction};
use dae_core::{AdamConfig, Precision};
use dae_model::step::{BatchSource, StepBuffers, StepPlan};
use dae_model::Architecture;

/// Training rows of the lab's epoch.
const EPOCH_ROWS: usize = 60_000;

/// Distinct stand-in addresses: a plan needs buffers only to name them.
fn stand_in_buffers(layers: usize) -> (StepBuffers, BatchSource) {
    let mut next = 0x1000_0000u64;
    let mut addr = || {
        next += 0x1000_0000;
        next
    };
    let b = StepBuffers {
        input: addr(),
        outputs: (0..layers).map(|_| addr()).collect(),
        delta: (0..layers).map(|_| addr()).collect(),
        params: addr(),
        grads: addr(),
        grads_scratch: addr(),
        m: addr(),
        v: addr(),
        step: addr(),
        loss_sum: addr(),
        loss_partial: addr(),
        work: addr(),
        lamb: None,
    };
    let src = BatchSource {
        u8_data: true,
        data: addr(),
        index: addr(),
        offset: Offset::Device(addr()),
    };
    (b, src)
}

fn step(
    arch: &Architecture,
    p: Precision,
    rows: usize,
    model: &Model,
) -> Result<Vec<OpPrediction>> {
    let layers = arch.layers();
    let plan = StepPlan {
        layers: &layers,
        precision: p,
        adam: AdamConfig::default(),
        schedule: dae_core::schedule::LrSchedule::constant(AdamConfig::default().lr)?,
        optimizer: dae_model::Optimizer::Adam,
    };
    let (bufs, src) = stand_in_buffers(layers.len());
    plan.train_step(&bufs, &src, rows, true)
        .iter()
        .map(|op| Ok(predict_op(op, model)?))
        .collect()
}

pub fn run(
    card: &str,
    launch_us: f64,
    arch: &Architecture,
    precisions: &[Precision],
    batches: &[usize],
) -> Result<()> {
    let ceilings = Ceilings::for_device(card).ok_or_else(|| {
        let known: Vec<&str> = Ceilings::known().iter().map(|c| c.card).collect();
        anyhow!(
            "unknown card '{card}' for --plan (known: {})",
            known.join(", ")
        )
    })?;
    if !(launch_us.is_finite() && launch_us >= 0.0) {
        return Err(anyhow!(
            "--launch-us {launch_us} must be a non-negative number of microseconds"
        ));
    }
    let model = Model::new(ceilings, launch_us);
    say!(
        "predicted on {} ({} SMs, {:.0} GB/s, FP32 {} / TF32 {} / BF16 {} TFLOP/s datasheet), {} µs per launch in a graph;",
        ceilings.card, model.sm_count, ceilings.memory_gbps, ceilings.fp32_tflops, ceilings.tf32_tflops, ceilings.bf16_tflops, launch_us
    );
    say!(
        "each launch: max(FLOPs / ({:.0}% of peak), bytes / ({:.0}% of bandwidth)), scaled by the share of SMs its grid fills; model {}",
        100.0 * model.tensor_efficiency,
        100.0 * model.memory_efficiency,
        arch.describe()
    );
    say!(
        "(FP32 products and CUDA-core ops at {:.0}% of the FP32 peak)",
        100.0 * model.fp32_efficiency
    );
    for &p in precisions {
        for &batch in batches {
            let ops = step(arch, p, batch, &model)?;
            say!("\n{} batch {batch}:", p.name());
            say!(
                "  {:<16} {:<24} {:>7} {:>10} {:>10} {:>10}",
                "op",
                "kernel",
                "blocks",
                "floor µs",
                "pred µs",
                "GB"
            );
            for o in &ops {
                for (j, l) in o.launches.iter().enumerate() {
                    let (name, floor) = if j == 0 {
                        (o.name.as_str(), format!("{:.2}", o.floor_ms * 1e3))
                    } else {
                        ("", String::new())
                    };
                    say!(
                        "  {name:<16} {:<24} {:>7} {floor:>10} {:>10.2} {:>10.4}",
                        l.kernel,
                        l.blocks,
                        l.ms * 1e3,
                        l.bytes / 1e9
                    );
                }
            }
            let step_ms: f64 = ops.iter().map(OpPrediction::ms).sum();
            let floor_ms: f64 = ops.iter().map(|o| o.floor_ms).sum();
            let launches: usize = ops.iter().map(|o| o.launches.len()).sum();
            let (full, rest) = (EPOCH_ROWS / batch, EPOCH_ROWS % batch);
            let rest_ms = if rest > 0 {
                step(arch, p, rest, &model)?
                    .iter()
                    .map(OpPrediction::ms)
                    .sum()
            } else {
                0.0
            };
            let epoch_ms = full as f64 * step_ms + rest_ms;
            say!(
                "  step: {launches} launches, predicted {:.1} µs (floors sum to {:.1} µs); {EPOCH_ROWS}-row epoch {:.2} ms, 20 epochs {:.3} s, {:.0} samples/s",
                step_ms * 1e3,
                floor_ms * 1e3,
                epoch_ms,
                20.0 * epoch_ms / 1e3,
                EPOCH_ROWS as f64 / (epoch_ms / 1e3)
            );
        }
    }
    Ok(())
}
