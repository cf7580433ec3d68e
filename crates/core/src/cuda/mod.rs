//! The CUDA side: finding a usable driver and GPU, compiling our kernels
//! with NVRTC (cached on disk), and launching them. cudarc loads libcuda and
//! libnvrtc at run time, so this builds and runs on machines without CUDA;
//! cudarc panics when a library is missing, hence the presence checks first.

pub mod ceilings;
pub mod check;
mod compile;
pub mod cublas;
mod device;
pub mod host;
pub mod lamb_plan;
mod launch;
mod memory;
pub mod ops;
pub mod plan;
pub mod predict;
pub mod profile;

pub use compile::{compile, kernel_sources, lineinfo_requested, nvrtc_version, KERNEL_OPTIONS};
pub use device::{Buffer, DeviceInfo, KernelDevice};
pub use host::HostDevice;
pub use launch::Kernels;
pub use memory::DeviceBuffer;
pub use ops::Offset;
pub use plan::{SplitPlan, LOSS_BLOCKS};

use anyhow::{anyhow, Result};
use cudarc::driver::{CudaContext, CudaStream};
use std::sync::Arc;

/// Matrix-product precision: FP32 on the CUDA cores, or tensor-core
/// operands (TF32, BF16) with FP32 accumulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    Fp32,
    Tf32,
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Tf32, Precision::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| anyhow!("unknown precision '{s}' (fp32, tf32 or bf16)"))
    }
}

/// Ok(device description) when a CUDA driver, NVRTC and a GPU are usable;
/// otherwise why not.
pub fn cuda_status() -> Result<String, String> {
    // SAFETY: these only try to dlopen the libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver found (libcuda could not be loaded)".into());
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("CUDA driver found but no NVRTC library (libnvrtc.so.13); install the CUDA toolkit's NVRTC".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("no usable CUDA device ({e})"))?;
    let name = ctx
        .name()
        .map_err(|e| format!("cannot query the CUDA device ({e})"))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("cannot query the CUDA device ({e})"))?;
    Ok(format!("{name} (sm_{major}{minor})"))
}

/// The CUDA version the driver supports, e.g. (13, 0).
pub fn driver_version() -> Result<(i32, i32)> {
    cuda_status().map_err(|e| anyhow!(e))?;
    let mut v = 0;
    // SAFETY: a plain out-parameter; the library is present.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if r != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return Err(anyhow!("cuDriverGetVersion failed: {r:?}"));
    }
    Ok((v / 1000, v % 1000 / 10))
}

/// Free memory on device 0, in bytes (without loading any kernel).
pub fn free_memory() -> Result<usize> {
    cuda_status().map_err(|e| anyhow!(e))?;
    let ctx = CudaContext::new(0).map_err(|e| anyhow!("cannot open CUDA device 0: {e}"))?;
    Ok(ctx.mem_get_info().map_err(|e| anyhow!("{e}"))?.0)
}

/// The SM count of device 0 (without loading any kernel): the memory plan
/// needs it for the split-K work space before anything is allocated.
pub fn sm_count() -> Result<usize> {
    cuda_status().map_err(|e| anyhow!(e))?;
    let ctx = CudaContext::new(0).map_err(|e| anyhow!("cannot open CUDA device 0: {e}"))?;
    let n = ctx
        .attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
        .map_err(|e| anyhow!("{e}"))?;
    Ok(n.max(1) as usize)
}

/// One GPU with our kernels loaded and the stream everything runs on.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub kernels: Kernels,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub sm_count: u32,
}

impl Gpu {
    /// Opens device 0 and compiles (or loads from the cache) every kernel.
    pub fn open() -> Result<Self> {
        cuda_status().map_err(|e| anyhow!(e))?;
        let ctx = CudaContext::new(0).map_err(|e| anyhow!("cannot open CUDA device 0: {e}"))?;
        // One stream, no cross-stream hazards: cudarc's per-buffer event
        // tracking would only add events (and break graph capture).
        // SAFETY: every launch and copy of dae goes through `stream`.
        unsafe { ctx.disable_event_tracking() };
        // Graph capture needs a stream other than the legacy default one.
        let stream = ctx
            .new_stream()
            .map_err(|e| anyhow!("cannot create a CUDA stream: {e}"))?;
        let name = ctx.name().map_err(|e| anyhow!("{e}"))?;
        let compute_capability = ctx.compute_capability().map_err(|e| anyhow!("{e}"))?;
        let sm_count = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(|e| anyhow!("{e}"))? as u32;
        let kernels = Kernels::load(&ctx, compute_capability, sm_count)?;
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

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(|e| anyhow!("{e}"))
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| anyhow!("CUDA error: {e}"))
    }
}
