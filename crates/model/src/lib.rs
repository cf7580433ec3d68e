//! The dense autoencoder: its architecture, parameters, training loop and
//! checkpoints, independent of the device that runs the math. A device is a
//! [`Backend`]; the CPU one lives here, the CUDA one beside it.

mod arch;
mod backend;
pub mod checkpoint;
mod cpu;
mod cuda;
mod fit;
pub mod folds;
pub mod gpu_check;
pub mod memory;
mod state;
pub mod step_plan;
mod summary;

pub use arch::{Architecture, Layer};
pub use backend::{Backend, Evaluation, NonFiniteLoss, StepObserver};
pub use checkpoint::Checkpoint;
pub use cpu::CpuBackend;
pub use cuda::CudaBackend;
pub use fit::{fit, EpochStats, FitObserver, History, TrainConfig};
pub use memory::MemoryPlan;
pub use state::TrainState;
pub use summary::{format_summary, group_digits, SummaryTable};
