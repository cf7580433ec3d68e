//! Where the time of a step goes: each op timed on its own (a recorded graph
//! of many back-to-back launches, so launch gaps are amortised away), the
//! whole step timed as one graph replay, and our GEMM's rate on a large
//! product. Device-neutral: any `KernelDevice` that can time (a GPU, with
//! events); the emulator says it cannot.

use crate::ops::{Forward, NamedOp, Op, SplitPlan};
use crate::{err, Activation, Buffer, GemmShape, KernelDevice, Precision, Result};

/// Launches per captured graph when timing one op.
pub const LAUNCHES_PER_GRAPH: usize = 20;
/// Timed graph replays (after one warm-up); the median is kept.
const REPLAYS: usize = 5;

#[derive(Clone, Debug)]
pub struct OpTiming {
    pub name: String,
    pub ms: f64,
    pub flops: f64,
    pub bytes: f64,
}

pub struct StepProfile {
    pub ops: Vec<OpTiming>,
    /// One replay of the whole step's graph.
    pub step_ms: f64,
}

impl StepProfile {
    pub fn kernel_ms(&self) -> f64 {
        self.ops.iter().map(|o| o.ms).sum()
    }

    /// Step time not spent inside kernels: launch gaps and dependencies.
    pub fn gap_ms(&self) -> f64 {
        (self.step_ms - self.kernel_ms()).max(0.0)
    }
}

/// Median milliseconds of one replay of `graph`, after one warm-up.
pub fn median_replay_ms<D: KernelDevice>(dev: &D, graph: &D::Graph) -> Result<f64> {
    dev.replay(graph)?;
    let mut times = Vec::with_capacity(REPLAYS);
    for _ in 0..REPLAYS {
        let ((), ms) = dev.timed(|| dev.replay(graph))?;
        times.push(ms.ok_or_else(|| {
            err!(
                Unsupported,
                "{} has no device clock to time with",
                dev.describe()
            )
        })?);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Median milliseconds per launch of `op`, recorded `count` times back to
/// back in one graph.
pub fn time_repeated<D: KernelDevice>(dev: &D, count: usize, op: &Op) -> Result<f64> {
    let graph = dev.record(&vec![op.clone(); count])?;
    Ok(median_replay_ms(dev, &graph)? / count as f64)
}

/// Times every op of `ops` alone and the whole list as one graph.
pub fn profile_step<D: KernelDevice>(dev: &D, ops: &[NamedOp]) -> Result<StepProfile> {
    let timed: Vec<&NamedOp> = ops.iter().filter(|o| !o.op.is_bookkeeping()).collect();
    let step: Vec<Op> = timed.iter().map(|o| o.op.repeatable()).collect();
    let step_ms = median_replay_ms(dev, &dev.record(&step)?)?;
    let mut timings = Vec::new();
    for o in timed {
        let op = o.op.repeatable();
        let (flops, bytes) = op.work();
        timings.push(OpTiming {
            name: o.name.clone(),
            ms: time_repeated(dev, LAUNCHES_PER_GRAPH, &op)?,
            flops,
            bytes,
        });
    }
    dev.synchronize()?;
    Ok(StepProfile {
        ops: timings,
        step_ms,
    })
}

/// Our own GEMM's rate on a large square product, TFLOP/s.
pub fn gemm_rate<D: KernelDevice>(dev: &D, p: Precision, size: usize) -> Result<f64> {
    // Random-ish operands: zeros can run faster than real data.
    let fill: Vec<f32> = (0..size * size)
        .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let a = Buffer::from_host(dev, &fill)?;
    let b = Buffer::from_host(dev, &fill)?;
    let c = Buffer::<D, f32>::zeros(dev, size * size)?;
    let shape = GemmShape::new(size, size, size);
    // A large square product has far more tiles than SMs and never splits;
    // scratch is allocated only if it would.
    let plan = SplitPlan::for_forward(shape, dev.sm_count());
    let work = match plan.partial_len(shape.y_len()) {
        0 => None,
        len => Some(Buffer::<D, f32>::zeros(dev, len)?),
    };
    let op = Op::GemmFwd(Forward {
        p,
        x: a.ptr(),
        w: b.ptr(),
        b: 0,
        y: c.ptr(),
        work: work.as_ref().map_or(0, Buffer::ptr),
        shape,
        act: Activation::Identity,
    });
    let ms = time_repeated(dev, 3, &op)?;
    Ok(shape.flops() / (ms * 1e-3) / 1e12)
}
