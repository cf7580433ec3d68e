//! kernels/loss.cu: binary cross-entropy on logits with the sigmoid fused,
//! its gradient, and the loss sum accumulated on the device in f64 from
//! fixed per-block partials (no atomics: the same bits every run).

use super::launch::{int, launch, Arg, Launch};
use super::{host, row_at, HostPart, HostParts, Kernel};
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
    /// z, t and dz are [rows, count / rows]: the host shares the loss by
    /// these rows (the GPU by its fixed blocks).
    pub rows: usize,
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

    /// A row op: each thread's loss over the rows its forward pass just
    /// wrote, no barrier before it.
    fn host_parts(&self) -> HostParts {
        HostParts::Rows(self.rows)
    }

    /// Each row's loss, summed in row order by the finish.
    fn host_scratch(&self, _threads: usize) -> usize {
        self.rows
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let r = part.range(self.rows, 1);
        let sums = std::slice::from_raw_parts_mut(part.scratch.add(r.start), r.len());
        self.rows_on_host(r.start, sums);
    }

    unsafe fn finish_on_host_part(&self, part: &HostPart) {
        if part.index == 0 {
            let sums = std::slice::from_raw_parts(part.scratch, self.rows);
            *(self.accum as *mut f64) += self.weight * sums.iter().sum::<f64>();
        }
    }

    unsafe fn run_on_host(&self) {
        let mut sums = vec![0.0f64; self.rows];
        self.rows_on_host(0, &mut sums);
        *(self.accum as *mut f64) += self.weight * sums.iter().sum::<f64>();
    }
}

impl Bce {
    /// The loss of rows `first..first + sums.len()` into `sums`, their
    /// gradient into dz.
    ///
    /// # Safety
    /// As [`Kernel::run_on_host`].
    unsafe fn rows_on_host(&self, first: usize, sums: &mut [f64]) {
        if sums.is_empty() {
            return;
        }
        assert!(
            self.rows > 0 && self.count.is_multiple_of(self.rows),
            "a loss of {} elements in {} rows",
            self.count,
            self.rows
        );
        let width = self.count / self.rows;
        let len = sums.len() * width;
        cpu::bce_rows(
            host(row_at(self.z, first, width), len),
            host(row_at(self.t, first, width), len),
            host(row_at(self.dz, first, width), len),
            self.grad_scale,
            width,
            sums,
        );
    }
}
