//! Compute core of dae: the CPU implementation of every op, their float64
//! references, the seeded RNG, and (behind `cuda`) the GPU kernels' launchers.

pub mod cpu;
pub mod cuda;
pub mod lamb;
pub mod reference;
pub mod reference_lamb;
pub mod rng;
pub mod schedule;

pub use cuda::cuda_status;

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
