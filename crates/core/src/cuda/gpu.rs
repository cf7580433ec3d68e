//! One GPU: its context, the stream everything runs on, our kernels loaded,
//! and the one implementation of graph capture and event timing that
//! training, profiling and benchmarks share.

use super::compile::CompileOptions;
use super::{libraries_present, DeviceBuffer, Kernels};
use crate::device::{DeviceInfo, KernelDevice};
use crate::ops::Op;
use crate::{err, Result};
use cudarc::driver::sys::{
    CUdevice_attribute, CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode,
};
use cudarc::driver::{CudaContext, CudaGraph, CudaStream};
use std::sync::Arc;

/// What the caller (the CLI, from the environment and flags) decides about
/// opening a GPU.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub compile: CompileOptions,
}

pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub kernels: Kernels,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub sm_count: u32,
}

fn cuda<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> crate::Error {
    move |e| err!(Cuda, "{what}: {e}")
}

impl Gpu {
    /// Opens device 0 and compiles (or loads from the cache) every kernel:
    /// the one discovery of the device in a run.
    pub fn open(options: &GpuOptions) -> Result<Self> {
        libraries_present()?;
        let ctx = CudaContext::new(0).map_err(|e| err!(NoDevice, "no usable CUDA device ({e})"))?;
        // One stream, no cross-stream hazards: cudarc's per-buffer event
        // tracking would only add events (and break graph capture).
        // SAFETY: every launch and copy of dae goes through `stream`.
        unsafe { ctx.disable_event_tracking() };
        // Graph capture needs a stream other than the legacy default one.
        let stream = ctx
            .new_stream()
            .map_err(cuda("cannot create a CUDA stream"))?;
        let name = ctx.name().map_err(cuda("cannot query the CUDA device"))?;
        let compute_capability = ctx
            .compute_capability()
            .map_err(cuda("cannot query the CUDA device"))?;
        let sm_count = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(cuda("cannot query the CUDA device"))?
            .max(1) as u32;
        let kernels = Kernels::load(&ctx, compute_capability, &options.compile)?;
        Ok(Gpu {
            ctx,
            stream,
            kernels,
            name,
            compute_capability,
            sm_count,
        })
    }

    pub fn describe(&self) -> String {
        let (major, minor) = self.compute_capability;
        format!("{} (sm_{major}{minor}, {} SMs)", self.name, self.sm_count)
    }

    /// Free device memory in bytes.
    pub fn free_memory(&self) -> Result<usize> {
        Ok(self
            .ctx
            .mem_get_info()
            .map_err(cuda("cannot query device memory"))?
            .0)
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda("CUDA error"))
    }

    /// Captures what `enqueue` puts on the stream into an uploaded graph.
    pub fn capture(&self, enqueue: impl FnOnce() -> Result<()>) -> Result<CudaGraph> {
        let s = &self.stream;
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(cuda("CUDA graph capture could not start"))?;
        let enqueued = enqueue();
        let graph = s.end_capture(CUgraphInstantiate_flags(0));
        enqueued?;
        let graph = graph
            .map_err(cuda("CUDA graph capture failed"))?
            .ok_or_else(|| err!(Cuda, "CUDA graph capture produced no graph"))?;
        graph.upload().map_err(cuda("CUDA graph upload failed"))?;
        Ok(graph)
    }

    /// Milliseconds between device events recorded around what `work`
    /// enqueues.
    pub fn time<R, E: From<crate::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, f64), E> {
        let event = || {
            self.ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(cuda("cannot create a CUDA event"))
        };
        let (started, ended) = (event()?, event()?);
        started.record(&self.stream).map_err(cuda("event record"))?;
        let result = work()?;
        ended.record(&self.stream).map_err(cuda("event record"))?;
        ended.synchronize().map_err(cuda("event synchronize"))?;
        let ms = started.elapsed_ms(&ended).map_err(cuda("event time"))?;
        Ok((result, ms as f64))
    }
}

impl KernelDevice for Gpu {
    type Memory = DeviceBuffer;
    type Graph = CudaGraph;

    fn describe(&self) -> String {
        format!("cuda: {}", Gpu::describe(self))
    }
    fn sm_count(&self) -> usize {
        self.sm_count as usize
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            kind: "cuda".into(),
            name: self.name.clone(),
            sm_count: self.sm_count as usize,
            compute_capability: Some(self.compute_capability),
            driver: super::driver_version().ok(),
            nvrtc: super::nvrtc_version().ok(),
        }
    }
    fn alloc(&self, bytes: usize) -> Result<Self::Memory> {
        DeviceBuffer::zeros(&self.stream, bytes)
    }
    fn address(&self, mem: &Self::Memory) -> u64 {
        mem.ptr()
    }
    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()> {
        mem.upload(&self.stream, data)
    }
    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>> {
        mem.download(&self.stream, len)
    }
    fn run(&self, op: &Op) -> Result<()> {
        op.launches(self.sm_count())?
            .iter()
            .try_for_each(|l| self.kernels.launch(&self.stream, l))
    }
    fn synchronize(&self) -> Result<()> {
        Gpu::synchronize(self)
    }
    fn record(&self, ops: &[Op]) -> Result<CudaGraph> {
        self.capture(|| ops.iter().try_for_each(|op| self.run(op)))
    }
    fn replay(&self, graph: &CudaGraph) -> Result<()> {
        graph.launch().map_err(cuda("CUDA graph launch failed"))
    }
    fn timed<R, E: From<crate::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E> {
        let (r, ms) = self.time(work)?;
        Ok((r, Some(ms)))
    }
}

impl Gpu {
    /// Median milliseconds per call of what `enqueue` puts on the stream
    /// (a cuBLAS call, a copy), captured `count` times back to back.
    pub fn time_enqueued(&self, count: usize, enqueue: impl Fn() -> Result<()>) -> Result<f64> {
        let graph = self.capture(|| (0..count).try_for_each(|_| enqueue()))?;
        Ok(crate::profile::median_replay_ms(self, &graph)? / count as f64)
    }

    /// Device-to-device copy bandwidth in GB/s (bytes read + bytes written).
    pub fn copy_bandwidth(&self) -> Result<f64> {
        let bytes = 1 << 30;
        let src = DeviceBuffer::zeros(&self.stream, bytes)?;
        let dst = DeviceBuffer::zeros(&self.stream, bytes)?;
        let ms = self.time_enqueued(1, || {
            // SAFETY: both buffers hold `bytes` bytes and do not overlap.
            unsafe {
                cudarc::driver::result::memcpy_dtod_async(
                    dst.ptr(),
                    src.ptr(),
                    bytes,
                    self.stream.cu_stream(),
                )
            }
            .map_err(cuda("device copy failed"))
        })?;
        Ok(2.0 * bytes as f64 / (ms * 1e-3) / 1e9)
    }
}
