//! The dense autoencoder: its architecture, parameters, training loop and
//! checkpoints, independent of the device that runs the math. A device is a
//! [`Backend`]; the CPU one lives here, and beside it the device backend
//! (our kernels on a GPU, or on the host emulator of crates/emu).

mod arch;
mod backend;
pub mod checkpoint;
mod cpu;
mod device_backend;
mod fit;
pub mod folds;
pub mod gpu_check;
pub mod memory;
mod state;
pub mod step_plan;
mod summary;
pub mod validate;

pub use arch::{Architecture, Layer, MAX_DEPTH, MAX_PARAMS, MAX_WIDTH};
pub use backend::{Backend, Evaluation, Interrupted, NonFiniteLoss, Silent, StepObserver};
pub use checkpoint::Checkpoint;
pub use cpu::CpuBackend;
pub use device_backend::{device_buffer_bytes, device_capacity, CudaBackend, DeviceBackend};
pub use fit::{fit, EpochStats, FitObserver, History, TrainConfig};
pub use memory::MemoryPlan;
pub use state::TrainState;
pub use summary::{format_summary, group_digits, SummaryTable};
