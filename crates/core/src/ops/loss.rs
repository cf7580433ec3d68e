//! kernels/loss.cu: binary cross-entropy on logits with the sigmoid fused,
//! its gradient, and the loss sum accumulated on the device in f64 from
//! fixed per-block partials (no atomics: the same bits every run).

use super::launch::{int, launch, Arg, Launch};
use super::{host, HostPart, HostParts, Kernel};
use crate::{cpu, Result};

/// Blocks of `bce_logits` (fixed, so the partial-sum buffer has a fixed size).
pub const LOSS_BLOCKS: usize = 1024;
pub const BCE_LOGITS: &str = "bce_logits";
pub const LOSS_ACCUMULATE: &str = "loss_accumulate";

/// dz = grad_scale·(σ(z) − t); *accum += weight·Σ bce(z, t).
#[derive(Clone, Debug)]
pub struct Bce {
    pub z: u64,
    pub t: u64,
    pub dz: u64,
    /// LOSS_BLOCKS f32 partial sums.
    pub partial: u64,
    /// One f64.
    pub accum: u64,
    pub count: usize,
    pub grad_scale: f32,
    pub weight: f64,
}

impl Kernel for Bce {
    fn launches(&self, _sm: usize) -> Result<Vec<Launch>> {
        Ok(vec![
            launch(
                BCE_LOGITS,
                (LOSS_BLOCKS, 1, 1),
                256,
                vec![
                    Arg::Ptr(self.z),
                    Arg::Ptr(self.t),
                    Arg::Ptr(self.dz),
                    Arg::Ptr(self.partial),
                    int(self.count)?,
                    Arg::F32(self.grad_scale),
                ],
            ),
            launch(
                LOSS_ACCUMULATE,
                (1, 1, 1),
                256,
                vec![
                    Arg::Ptr(self.partial),
                    int(LOSS_BLOCKS)?,
                    Arg::Ptr(self.accum),
                    Arg::F64(self.weight),
                ],
            ),
        ])
    }

    fn work(&self) -> (f64, f64) {
        let c = self.count as f64;
        (15.0 * c, 12.0 * c)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Split
    }

    fn host_sums(&self) -> usize {
        cpu::bce_chunk_count(self.count)
    }

    /// Whole chunks of `bce_logits` per share, their sums left for the
    /// finish: the loss of given logits has the same bits on any thread
    /// count.
    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let c = self.count;
        let chunks = part.range(self.host_sums(), 1);
        let sums = std::slice::from_raw_parts_mut(part.sums.add(chunks.start), chunks.len());
        cpu::bce_chunks(
            host(self.z, c),
            host(self.t, c),
            host(self.dz, c),
            self.grad_scale,
            chunks,
            sums,
        );
    }

    unsafe fn finish_on_host(&self, sums: &[f64]) {
        let sum: f64 = sums[..self.host_sums()].iter().sum();
        *(self.accum as *mut f64) += self.weight * sum;
    }

    unsafe fn run_on_host(&self) {
        let c = self.count;
        let sum = cpu::bce_logits(
            host(self.z, c),
            host(self.t, c),
            host(self.dz, c),
            self.grad_scale,
        );
        *(self.accum as *mut f64) += self.weight * sum;
    }
}
