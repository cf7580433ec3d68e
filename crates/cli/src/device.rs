//! Choosing the device a command runs on: discovered once per command, then
//! passed down to everything that needs it. The environment the libraries
//! do not read (kernel cache, line info, CUDA graphs) is read here.

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use dae_core::cuda::{CompileOptions, Gpu, GpuOptions};
use dae_core::Precision;
use dae_model::{Architecture, Backend, CpuBackend, CudaBackend, TrainConfig, TrainState};
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a driver and GPU are found, else the CPU
    Auto,
    Cpu,
    Cuda,
}

/// The device a command runs on, once `auto` is decided: the GPU opened
/// (kernels compiled or loaded from the cache) once, shared by every
/// backend of the command.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Cuda(Rc<Gpu>),
}

/// How kernels are compiled and cached: `DAE_KERNEL_CACHE` (else
/// `$XDG_CACHE_HOME/dae/kernels`, else `~/.cache/dae/kernels`) and
/// `DAE_KERNEL_LINEINFO=1` (source lines for ncu and compute-sanitizer).
pub fn gpu_options() -> GpuOptions {
    let env = std::env::var_os;
    let cache_dir = env("DAE_KERNEL_CACHE").map(PathBuf::from).or_else(|| {
        let base = env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("dae").join("kernels"))
    });
    GpuOptions {
        compile: CompileOptions {
            cache_dir,
            lineinfo: env("DAE_KERNEL_LINEINFO").is_some_and(|v| v == "1"),
        },
    }
}

/// Whether the train step is replayed as a CUDA graph (`DAE_NO_CUDA_GRAPH`
/// set: launched op by op, for tools that cannot follow graphs).
pub fn graphs_enabled() -> bool {
    std::env::var_os("DAE_NO_CUDA_GRAPH").is_none()
}

/// Opens the GPU for `--device cuda` or `auto`.
pub fn open_gpu() -> dae_core::Result<Gpu> {
    Gpu::open(&gpu_options())
}

/// Decides `auto` (the GPU when a driver, NVRTC and a device are usable,
/// otherwise the CPU, saying why), checks the precision fits the device,
/// and opens the GPU.
pub fn resolve(choice: DeviceChoice, precision: Precision, quiet: bool) -> Result<Device> {
    match choice {
        DeviceChoice::Cuda => match open_gpu() {
            Ok(gpu) => Ok(Device::Cuda(Rc::new(gpu))),
            Err(why) => bail!("--device cuda: {why}"),
        },
        DeviceChoice::Cpu => {
            if precision != Precision::Fp32 {
                bail!(
                    "--precision {precision}: only the CUDA device has reduced-precision paths; the CPU computes in fp32"
                );
            }
            Ok(Device::Cpu)
        }
        DeviceChoice::Auto => match open_gpu() {
            Ok(gpu) => Ok(Device::Cuda(Rc::new(gpu))),
            Err(dae_core::Error::NoDevice(why)) => {
                if precision != Precision::Fp32 {
                    bail!("--precision {precision} needs a CUDA device, and {why}");
                }
                if !quiet {
                    say_err!("device: cpu ({why})");
                }
                Ok(Device::Cpu)
            }
            Err(e) => Err(e).context("CUDA device"),
        },
    }
}

impl Device {
    /// Bytes free for a run, when known.
    pub fn available_memory(&self) -> Option<(usize, &'static str)> {
        match self {
            Device::Cpu => dae_model::memory::host_memory_limit(),
            Device::Cuda(gpu) => gpu.free_memory().ok().map(|f| (f, "free device memory")),
        }
    }

    pub fn gpu(&self) -> Option<&Rc<Gpu>> {
        match self {
            Device::Cpu => None,
            Device::Cuda(gpu) => Some(gpu),
        }
    }
}

/// Builds the backend on an already resolved device.
pub fn build_backend(
    device: &Device,
    arch: &Architecture,
    cfg: &TrainConfig,
    state: TrainState,
) -> Result<Box<dyn Backend>> {
    match device {
        Device::Cpu => Ok(Box::new(
            CpuBackend::new(arch, cfg.adam(), cfg.batch, state)?
                .with_optimizer(cfg.optimizer)?
                .with_accumulation(cfg.accumulate)?,
        )),
        Device::Cuda(gpu) => {
            let backend = CudaBackend::on(
                gpu.clone(),
                arch,
                cfg.adam(),
                cfg.precision,
                cfg.batch,
                state,
            )
            .and_then(|b| b.with_optimizer(cfg.optimizer))
            .and_then(|b| b.with_accumulation(cfg.accumulate))
            .context("CUDA device")?;
            Ok(Box::new(backend.recording_graphs(graphs_enabled())))
        }
    }
}
