//! kernels/adam.cu: Keras-3 Adam over the flat parameter buffer, and the
//! device-held step counter it reads (so a recorded CUDA graph serves every
//! step).

use super::launch::{elementwise_grid, int, launch, Arg, Launch};
use super::{host, Kernel};
use crate::{cpu, AdamConfig, Result};

pub const ADAM_STEP: &str = "adam_step";
pub const STEP_INCREMENT: &str = "step_increment";

/// *step += 1 (an i32 on the device).
#[derive(Clone, Debug)]
pub struct StepIncrement {
    pub step: u64,
}

impl Kernel for StepIncrement {
    fn launches(&self, _sm: usize) -> Result<Vec<Launch>> {
        Ok(vec![launch(
            STEP_INCREMENT,
            (1, 1, 1),
            1,
            vec![Arg::Ptr(self.step)],
        )])
    }

    fn work(&self) -> (f64, f64) {
        (1.0, 8.0)
    }

    unsafe fn run_on_host(&self) {
        *(self.step as *mut i32) += 1;
    }
}

/// One Adam step of `n` parameters at the step the counter holds.
#[derive(Clone, Debug)]
pub struct AdamStep {
    pub params: u64,
    pub grads: u64,
    pub m: u64,
    pub v: u64,
    pub n: usize,
    /// The i32 step counter (1-based, already incremented).
    pub step: u64,
    pub cfg: AdamConfig,
}

impl Kernel for AdamStep {
    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let c = &self.cfg;
        Ok(vec![launch(
            ADAM_STEP,
            elementwise_grid(self.n, sm),
            256,
            vec![
                Arg::Ptr(self.params),
                Arg::Ptr(self.grads),
                Arg::Ptr(self.m),
                Arg::Ptr(self.v),
                int(self.n)?,
                Arg::Ptr(self.step),
                Arg::F32(c.lr),
                Arg::F32(c.beta1),
                Arg::F32(c.beta2),
                Arg::F32(c.eps),
            ],
        )])
    }

    fn work(&self) -> (f64, f64) {
        let n = self.n as f64;
        (12.0 * n, 28.0 * n)
    }

    unsafe fn run_on_host(&self) {
        let n = self.n;
        let t = *(self.step as *const i32) as u64;
        cpu::adam_step(
            host(self.params, n),
            host(self.grads, n),
            host(self.m, n),
            host(self.v, n),
            t,
            &self.cfg,
        );
    }
}
