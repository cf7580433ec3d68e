//! Choosing the device a command runs on.

use crate::args::DeviceChoice;
use anyhow::{bail, Result};
use dae_model::{Architecture, Backend, CpuBackend, TrainConfig, TrainState};

/// Builds the backend `choice` asks for; `auto` falls back to the CPU and
/// says why.
pub fn create_backend(
    choice: DeviceChoice,
    arch: &Architecture,
    cfg: &TrainConfig,
    state: TrainState,
    quiet: bool,
) -> Result<Box<dyn Backend>> {
    if cfg.precision != "fp32" && choice != DeviceChoice::Cuda {
        // tf32/bf16 are tensor-core formats; the CPU computes in fp32.
        if choice == DeviceChoice::Cpu {
            bail!("--precision {}: only the CUDA device has reduced-precision paths; the CPU runs fp32", cfg.precision);
        }
    }
    match choice {
        DeviceChoice::Cpu => Ok(Box::new(CpuBackend::new(arch, cfg.adam(), state)?)),
        DeviceChoice::Cuda => bail!(
            "--device cuda: {}",
            dae_core::cuda_status()
                .unwrap_err_or("the CUDA training path is not built into this version yet")
        ),
        DeviceChoice::Auto => {
            if let Err(why) = dae_core::cuda_status() {
                if !quiet {
                    eprintln!("device: cpu ({why})");
                }
            }
            Ok(Box::new(CpuBackend::new(arch, cfg.adam(), state)?))
        }
    }
}

trait UnwrapErrOr {
    fn unwrap_err_or(self, default: &str) -> String;
}

impl UnwrapErrOr for std::result::Result<String, String> {
    fn unwrap_err_or(self, default: &str) -> String {
        match self {
            Err(e) => e,
            Ok(_) => default.to_string(),
        }
    }
}
