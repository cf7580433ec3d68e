//! The dense autoencoder: its architecture, parameters, training loop and
//! checkpoints, independent of the device that runs the math. The training
//! step is defined once (`step`) and run by `DeviceBackend` on any device:
//! the CPU (its ops on host memory), a GPU (our kernels, a CUDA graph), or
//! the host emulator of crates/emu.

mod arch;
mod backend;
pub mod checkpoint;
mod device_backend;
mod error;
mod fit;
pub mod folds;
pub mod gpu_check;
pub mod memory;
pub mod optimizer;
mod state;
pub mod step;
mod summary;
pub mod validate;

pub use arch::{Architecture, Layer, MAX_DEPTH, MAX_PARAMS, MAX_WIDTH};
pub use backend::{Backend, Evaluation, Interrupted, NonFiniteLoss, Silent, StepObserver};
pub use checkpoint::Checkpoint;
pub use device_backend::{
    accumulation_bytes, buffer_bytes, capacity, CpuBackend, CudaBackend, DeviceBackend,
    HOST_SM_COUNT,
};
pub use error::{Error, Result};
pub use fit::{fit, EpochStats, FitObserver, FitOutcome, History, TargetReached, TrainConfig};
pub use memory::MemoryPlan;
pub use optimizer::Optimizer;
pub use state::TrainState;
pub use summary::{format_summary, group_digits, SummaryTable};
