//! Choosing the device a command runs on.

use crate::args::DeviceChoice;
use anyhow::{bail, Context, Result};
use dae_core::cuda::Precision;
use dae_model::{Architecture, Backend, CpuBackend, CudaBackend, TrainConfig, TrainState};

/// The device a command will run on, once `auto` is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

/// Decides `auto` (the GPU when a driver, NVRTC and a device are usable,
/// otherwise the CPU, saying why) and checks the precision fits the device.
pub fn resolve(choice: DeviceChoice, precision: &str, quiet: bool) -> Result<Device> {
    let precision = Precision::parse(precision)?;
    match choice {
        DeviceChoice::Cuda => match dae_core::cuda_status() {
            Ok(_) => Ok(Device::Cuda),
            Err(why) => bail!("--device cuda: {why}"),
        },
        DeviceChoice::Cpu => {
            if precision != Precision::Fp32 {
                bail!(
                    "--precision {}: only the CUDA device has reduced-precision paths; the CPU computes in fp32",
                    precision.name()
                );
            }
            Ok(Device::Cpu)
        }
        DeviceChoice::Auto => match dae_core::cuda_status() {
            Ok(_) => Ok(Device::Cuda),
            Err(why) => {
                if precision != Precision::Fp32 {
                    bail!(
                        "--precision {} needs a CUDA device, and {why}",
                        precision.name()
                    );
                }
                if !quiet {
                    say_err!("device: cpu ({why})");
                }
                Ok(Device::Cpu)
            }
        },
    }
}

/// Bytes free for a run on `device`, when known.
pub fn available_memory(device: Device) -> Option<(usize, &'static str)> {
    match device {
        Device::Cpu => dae_model::memory::host_memory_limit(),
        Device::Cuda => dae_core::cuda::free_memory()
            .ok()
            .map(|f| (f, "free device memory")),
    }
}

/// Builds the backend for an already resolved device.
pub fn build_backend(
    device: Device,
    arch: &Architecture,
    cfg: &TrainConfig,
    state: TrainState,
) -> Result<Box<dyn Backend>> {
    match device {
        Device::Cpu => Ok(Box::new(CpuBackend::new(arch, cfg.adam(), state)?)),
        Device::Cuda => {
            let precision = Precision::parse(&cfg.precision)?;
            let backend = CudaBackend::new(arch, cfg.adam(), precision, cfg.batch, state);
            Ok(Box::new(backend.context("CUDA device")?))
        }
    }
}

/// Resolves `choice` and builds its backend.
pub fn create_backend(
    choice: DeviceChoice,
    arch: &Architecture,
    cfg: &TrainConfig,
    state: TrainState,
    quiet: bool,
) -> Result<Box<dyn Backend>> {
    let device = resolve(choice, &cfg.precision, quiet)?;
    build_backend(device, arch, cfg, state)
}
