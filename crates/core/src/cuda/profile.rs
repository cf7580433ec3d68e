//! Where the time of a step goes: each op timed on its own (a CUDA graph of
//! many back-to-back launches, so launch gaps are amortised away), the whole
//! step timed as one graph replay, and the machine's ceilings measured in the
//! same run (a large device-to-device copy; a large matrix product).

use super::ops::{NamedOp, Op};
use super::{DeviceBuffer, Gpu, Precision, SplitPlan};
use crate::Activation;
use anyhow::{anyhow, Result};
use cudarc::driver::sys::{CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;

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

fn capture(gpu: &Gpu, launch: impl Fn() -> Result<()>) -> Result<CudaGraph> {
    let s = &gpu.stream;
    s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(|e| anyhow!("CUDA graph capture could not start: {e}"))?;
    let launched = launch();
    let graph = s.end_capture(CUgraphInstantiate_flags(0));
    launched?;
    graph
        .map_err(|e| anyhow!("CUDA graph capture failed: {e}"))?
        .ok_or_else(|| anyhow!("CUDA graph capture produced no graph"))
}

/// Median milliseconds of one replay of `graph`, timed with device events.
fn time_graph(gpu: &Gpu, graph: &CudaGraph) -> Result<f64> {
    let e = |_| {
        gpu.ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| anyhow!("{e}"))
    };
    graph.launch().map_err(|e| anyhow!("{e}"))?; // warm-up
    let mut times = Vec::new();
    for _ in 0..REPLAYS {
        let (start, end) = (e(())?, e(())?);
        start.record(&gpu.stream).map_err(|e| anyhow!("{e}"))?;
        graph.launch().map_err(|e| anyhow!("{e}"))?;
        end.record(&gpu.stream).map_err(|e| anyhow!("{e}"))?;
        times.push(start.elapsed_ms(&end).map_err(|e| anyhow!("{e}"))? as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Median milliseconds per launch of `launch`, captured `count` times
/// back to back in one graph (so launch gaps are amortised away).
pub fn time_repeated(gpu: &Gpu, count: usize, launch: impl Fn() -> Result<()>) -> Result<f64> {
    let graph = capture(gpu, || (0..count).try_for_each(|_| launch()))?;
    Ok(time_graph(gpu, &graph)? / count as f64)
}

/// Times every op of `ops` alone and the whole list as one graph.
pub fn profile_step(gpu: &Gpu, ops: &[NamedOp]) -> Result<StepProfile> {
    let (k, s) = (&gpu.kernels, &gpu.stream);
    let step: Vec<Op> = ops
        .iter()
        .filter(|o| !o.op.is_bookkeeping())
        .map(|o| o.op.repeatable())
        .collect();
    let whole = capture(gpu, || step.iter().try_for_each(|op| op.launch(k, s)))?;
    let step_ms = time_graph(gpu, &whole)?;
    let mut timings = Vec::new();
    for o in ops.iter().filter(|o| !o.op.is_bookkeeping()) {
        let op = o.op.repeatable();
        let (flops, bytes) = op.work();
        timings.push(OpTiming {
            name: o.name.clone(),
            ms: time_repeated(gpu, LAUNCHES_PER_GRAPH, || op.launch(k, s))?,
            flops,
            bytes,
        });
    }
    gpu.synchronize()?;
    Ok(StepProfile {
        ops: timings,
        step_ms,
    })
}

/// Device-to-device copy bandwidth in GB/s (bytes read + bytes written).
pub fn copy_bandwidth(gpu: &Gpu) -> Result<f64> {
    let len = 256 << 20; // floats: 1 GiB each way
    let src = DeviceBuffer::<f32>::zeros(&gpu.stream, len)?;
    let dst = DeviceBuffer::<f32>::zeros(&gpu.stream, len)?;
    let graph = capture(gpu, || {
        // SAFETY: both buffers hold `len` floats and do not overlap.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                dst.ptr(),
                src.ptr(),
                len * 4,
                gpu.stream.cu_stream(),
            )
            .map_err(|e| anyhow!("device copy failed: {e}"))
        }
    })?;
    let ms = time_graph(gpu, &graph)?;
    Ok(2.0 * (len * 4) as f64 / (ms * 1e-3) / 1e9)
}

/// Our own GEMM's rate on a large square product, TFLOP/s.
pub fn gemm_rate(gpu: &Gpu, p: Precision, size: usize) -> Result<f64> {
    let s = &gpu.stream;
    let (a, b, c) = (
        DeviceBuffer::<f32>::zeros(s, size * size)?,
        DeviceBuffer::<f32>::zeros(s, size * size)?,
        DeviceBuffer::<f32>::zeros(s, size * size)?,
    );
    // Random-ish operands: zeros can run faster than real data.
    let fill: Vec<f32> = (0..size * size)
        .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut a = a;
    let mut b = b;
    a.upload(s, &fill)?;
    b.upload(s, &fill)?;
    // A large square product has far more tiles than SMs and never splits
    // (SplitPlan::for_forward); scratch is allocated only if it would.
    let plan = SplitPlan::for_forward(size, size, size, gpu.kernels.sm_count());
    let work = match plan.partial_len(size * size) {
        0 => None,
        len => Some(DeviceBuffer::<f32>::zeros(s, len)?),
    };
    let work_ptr = work.as_ref().map_or(0, |w| w.ptr());
    let op = Op::GemmFwd {
        p,
        x: a.ptr(),
        w: b.ptr(),
        b: 0,
        y: c.ptr(),
        work: work_ptr,
        m: size,
        n: size,
        k: size,
        act: Activation::Identity,
    };
    let ms = time_repeated(gpu, 3, || op.launch(&gpu.kernels, s))?;
    Ok(2.0 * (size as f64).powi(3) / (ms * 1e-3) / 1e12)
}
