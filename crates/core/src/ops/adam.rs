//! kernels/adam.cu: Keras-3 Adam (with AdamW's decoupled weight decay)
//! over the flat parameter buffer, its learning rate computed from the
//! device-held step counter and the schedule (so one recorded CUDA graph
//! serves the whole run), and that step counter.

use super::launch::{elementwise_grid, int, launch, Arg, Launch};
use super::{host, row_at, HostPart, HostParts, Kernel};
use crate::schedule::LrSchedule;
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
    /// β1, β2, ε and the weight decay (its `lr` is the schedule's).
    pub cfg: AdamConfig,
    /// The learning rate of each step.
    pub schedule: LrSchedule,
}

impl Kernel for AdamStep {
    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let (c, lr) = (&self.cfg, self.schedule.device_args());
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
                Arg::I32(lr.kind),
                Arg::F32(lr.peak),
                Arg::I32(lr.warmup),
                Arg::I32(lr.total),
                Arg::F32(lr.final_fraction),
                Arg::F32(c.beta1),
                Arg::F32(c.beta2),
                Arg::F32(c.eps),
                Arg::F32(c.weight_decay),
            ],
        )])
    }

    fn work(&self) -> (f64, f64) {
        let n = self.n as f64;
        (12.0 * n, 28.0 * n)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Split
    }

    /// Adam is elementwise: a share of the parameters, 64 at a time.
    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let r = part.range(self.n, 64);
        if !r.is_empty() {
            let at = |addr: u64| row_at(addr, r.start, 1);
            AdamStep {
                params: at(self.params),
                grads: at(self.grads),
                m: at(self.m),
                v: at(self.v),
                n: r.len(),
                ..self.clone()
            }
            .run_on_host();
        }
    }

    unsafe fn run_on_host(&self) {
        let n = self.n;
        let t = *(self.step as *const i32) as u64;
        let cfg = AdamConfig {
            lr: self.schedule.lr_at(t as u32),
            ..self.cfg
        };
        cpu::adam_step(
            host(self.params, n),
            host(self.grads, n),
            host(self.m, n),
            host(self.v, n),
            t,
            &cfg,
        );
    }
}
