//! A step's predicted time on a named card, without the card: each op's
//! launches from the launch plans, each launch's FLOPs and bytes (split-K
//! partials included), a roofline per launch scaled by how many SMs its
//! grid can occupy, plus a per-launch latency inside a CUDA graph. The
//! parameters are stated in `Model`, so the first hardware run can put
//! each kernel's measurement beside its prediction.

use crate::ceilings::Ceilings;
use crate::ops::{reduce, Launch, NamedOp, Op, LOSS_BLOCKS};
use crate::{Precision, Result};

/// The assumptions of a prediction.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    pub card: Ceilings,
    pub sm_count: usize,
    /// Microseconds each launch adds inside a CUDA graph.
    pub launch_us: f64,
    /// Shares of the datasheet rates a well-written kernel reaches: HBM
    /// streaming, FP32 FMA, and `mma.sync` tensor-core GEMMs (no TMA or
    /// wgmma, so well under the dense peak).
    pub memory_efficiency: f64,
    pub fp32_efficiency: f64,
    pub tensor_efficiency: f64,
}

impl Model {
    pub fn new(card: Ceilings, launch_us: f64) -> Self {
        Model {
            sm_count: card.sm_count,
            card,
            launch_us,
            memory_efficiency: 0.8,
            fp32_efficiency: 0.7,
            tensor_efficiency: 0.5,
        }
    }
}

/// One launch's prediction.
#[derive(Clone, Debug)]
pub struct LaunchPrediction {
    pub kernel: &'static str,
    pub blocks: usize,
    pub flops: f64,
    pub bytes: f64,
    pub ms: f64,
}

/// One op's prediction: its launches, and its floor (the op's least
/// traffic and FLOPs at the full datasheet rates).
#[derive(Clone, Debug)]
pub struct OpPrediction {
    pub name: String,
    pub launches: Vec<LaunchPrediction>,
    pub floor_ms: f64,
}

impl OpPrediction {
    pub fn ms(&self) -> f64 {
        self.launches.iter().map(|l| l.ms).sum()
    }
}

/// (FLOPs, bytes) of one launch of `op`.
fn launch_work(op: &Op, l: &Launch, sm: usize) -> (f64, f64) {
    let (op_flops, op_bytes) = op.work();
    let split = op.split(sm);
    let finish = [
        reduce::REDUCE_SPLITS,
        reduce::SPLITK_BIAS_ACT,
        reduce::SPLITK_MASK,
    ];
    match (l.kernel, split) {
        (kernel, Some((s, out))) if finish.contains(&kernel) => {
            // Reads every split's partial (and a mask), writes the output.
            let extra = if kernel == reduce::SPLITK_MASK {
                4.0
            } else {
                0.0
            };
            (
                (s * out) as f64,
                (4 * (s + 1) * out) as f64 + extra * out as f64,
            )
        }
        (crate::ops::loss::LOSS_ACCUMULATE, _) => (LOSS_BLOCKS as f64, 8.0 * LOSS_BLOCKS as f64),
        (_, Some((s, out))) => {
            // The main product writes splits partials instead of the output once.
            (op_flops, op_bytes + (4 * (s - 1) * out) as f64)
        }
        _ => (op_flops, op_bytes),
    }
}

pub fn predict_op(op: &NamedOp, model: &Model) -> Result<OpPrediction> {
    let sm = model.sm_count;
    let p = op.op.precision();
    let tflops = match p {
        None | Some(Precision::Fp32) => model.card.fp32_tflops * model.fp32_efficiency,
        Some(Precision::Tf32) => model.card.tf32_tflops * model.tensor_efficiency,
        Some(Precision::Bf16) => model.card.bf16_tflops * model.tensor_efficiency,
    };
    let mut launches = Vec::new();
    for l in op.op.launches(sm)? {
        let (flops, bytes) = launch_work(&op.op, &l, sm);
        let blocks = (l.grid.0 * l.grid.1 * l.grid.2) as usize;
        // A grid smaller than the card uses that share of its SMs.
        let share = (blocks as f64 / sm as f64).min(1.0);
        let compute = flops / (tflops * 1e12 * share);
        let memory = bytes / (model.card.memory_gbps * 1e9 * model.memory_efficiency * share);
        launches.push(LaunchPrediction {
            kernel: l.kernel,
            blocks,
            flops,
            bytes,
            ms: compute.max(memory) * 1e3 + model.launch_us * 1e-3,
        });
    }
    let (flops, bytes) = op.op.work();
    Ok(OpPrediction {
        name: op.name.clone(),
        launches,
        floor_ms: model.card.floor_ms(flops, bytes, p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Forward;
    use crate::{Activation, GemmShape};

    fn h200() -> Model {
        Model::new(Ceilings::for_device("H200").unwrap(), 2.0)
    }

    fn fwd(m: usize, p: Precision) -> NamedOp {
        NamedOp {
            name: "fwd".into(),
            op: Op::GemmFwd(Forward {
                p,
                x: 1,
                w: 2,
                b: 3,
                y: 4,
                work: 5,
                shape: GemmShape::new(m, 128, 784),
                act: Activation::Relu,
            }),
        }
    }

    #[test]
    fn large_products_are_roofline_bound_and_small_ones_latency_bound() {
        let m = h200();
        // 65,536×128×784 in fp32: 13.2 GFLOP at 0.7·67 TFLOP/s ≈ 0.28 ms.
        let big = predict_op(&fwd(65_536, Precision::Fp32), &m).unwrap();
        assert_eq!(big.launches.len(), 1);
        assert!((big.ms() - 0.283).abs() < 0.01, "{big:?}");
        assert!(big.floor_ms < big.ms());
        // Batch 256 splits over K: a partial product and its finish, each
        // a few microseconds, the latency a large part of it.
        let small = predict_op(&fwd(256, Precision::Bf16), &m).unwrap();
        assert_eq!(small.launches.len(), 2, "{small:?}");
        assert!(small.ms() < 0.02 && small.ms() > 2.0 * m.launch_us * 1e-3);
        // Split partials cost traffic beyond the floor's.
        assert!(small.launches[0].bytes > fwd(256, Precision::Bf16).op.work().1);
    }
}
