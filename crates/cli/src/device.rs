//! Choosing the device a command runs on.

use crate::args::DeviceChoice;
use anyhow::{bail, Context, Result};
use dae_core::cuda::Precision;
use dae_model::{Architecture, Backend, CpuBackend, CudaBackend, TrainConfig, TrainState};

/// Builds the backend `choice` asks for; `auto` takes the GPU when one is
/// usable and otherwise the CPU, and says which.
pub fn create_backend(
    choice: DeviceChoice,
    arch: &Architecture,
    cfg: &TrainConfig,
    state: TrainState,
    quiet: bool,
) -> Result<Box<dyn Backend>> {
    let precision = Precision::parse(&cfg.precision)?;
    let cuda = || -> Result<Box<dyn Backend>> {
        Ok(Box::new(CudaBackend::new(
            arch,
            cfg.adam(),
            precision,
            cfg.batch,
            state.clone(),
        )?))
    };
    match choice {
        DeviceChoice::Cuda => {
            if let Err(why) = dae_core::cuda_status() {
                bail!("--device cuda: {why}");
            }
            cuda().context("--device cuda")
        }
        DeviceChoice::Cpu => {
            if precision != Precision::Fp32 {
                bail!("--precision {}: only the CUDA device has reduced-precision paths; the CPU computes in fp32", cfg.precision);
            }
            Ok(Box::new(CpuBackend::new(arch, cfg.adam(), state)?))
        }
        DeviceChoice::Auto => match dae_core::cuda_status() {
            Ok(_) => cuda(),
            Err(why) => {
                if precision != Precision::Fp32 {
                    bail!(
                        "--precision {} needs a CUDA device, and {why}",
                        cfg.precision
                    );
                }
                if !quiet {
                    eprintln!("device: cpu ({why})");
                }
                Ok(Box::new(CpuBackend::new(arch, cfg.adam(), state)?))
            }
        },
    }
}
