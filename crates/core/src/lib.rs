//! Compute core of dae, in layers:
//! - `ops`: the device-neutral kernel layer, one module per kernels/*.cu
//!   family (ops, launch plans, work, host meaning);
//! - `device`: what a device must do to run ops (`KernelDevice`, `Buffer`),
//!   with `host` (CPU memory, CPU ops) as one such device;
//! - `cuda`: the CUDA driver side (context, NVRTC compile and cache, graph
//!   capture, events, cuBLAS as a reference);
//! - `cpu`: the CPU implementation of every op; `reference`: their float64
//!   references; `check`: the kernel regression suite; `profile`,
//!   `predict`, `ceilings`: timing, its prediction and the datasheet floors.

pub mod ceilings;
pub mod check;
pub mod cpu;
pub mod cuda;
pub mod device;
mod error;
pub mod host;
pub mod ops;
mod precision;
pub mod predict;
pub mod profile;
pub mod reference;
pub mod reference_lamb;
pub mod rng;
pub mod schedule;
mod shape;

pub use device::{Buffer, DeviceInfo, KernelDevice};
pub use error::{Error, Result};
pub use host::HostDevice;
pub use precision::{Precision, UnknownPrecision};
pub use shape::GemmShape;

/// Activation applied in a dense layer's epilogue. The numeric codes match the
/// `act` argument of the CUDA kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity = 0,
    Relu = 1,
    Sigmoid = 2,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// Adam hyper-parameters; defaults are Keras'. LAMB takes the same ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW, PyTorch's order: p −= lr·wd·p, then
    /// the Adam update); 0 skips it, leaving plain Adam's bits. For LAMB the
    /// wd·p term of the update.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Keras-3 step size for 1-based step `t`: lr·sqrt(1-β2^t)/(1-β1^t).
    /// Computed in f64 so CPU and GPU agree on the same f32 value.
    pub fn alpha(&self, t: u64) -> f32 {
        let t = t as i32;
        let b1 = 1.0 - (self.beta1 as f64).powi(t);
        let b2 = 1.0 - (self.beta2 as f64).powi(t);
        (self.lr as f64 * b2.sqrt() / b1) as f32
    }
}
