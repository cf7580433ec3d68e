//! kernels/reduce.cu: the bias gradient (column sums of dY), and the
//! finishes of every split-K product: summing the splits' partials in split
//! order (dW, db), with the bias and activation (forward) or the ReLU mask
//! (input gradient) applied on the way out; and gradient accumulation
//! (a later micro-batch's gradient added into the step's).

use super::launch::{cdiv, elementwise_grid, int, launch, Arg, Launch};
use super::split::SplitPlan;
use super::{host, row_at, row_sums_scratch, HostPart, HostParts, Kernel};
use crate::{cpu, fail, Result};

pub const REDUCE_SPLITS: &str = "reduce_splits";
pub const SPLITK_BIAS_ACT: &str = "splitk_bias_act";
pub const SPLITK_MASK: &str = "splitk_mask";
pub const BIAS_GRAD: &str = "bias_grad";
pub const ACCUMULATE_ADD: &str = "accumulate_add";

/// out[i] = Σ_s partial[s·count + i], in split order.
pub(crate) fn reduce_splits(
    partial: u64,
    out: u64,
    splits: usize,
    count: usize,
    sm: usize,
) -> Result<Launch> {
    Ok(launch(
        REDUCE_SPLITS,
        elementwise_grid(count, sm),
        256,
        vec![Arg::Ptr(partial), Arg::Ptr(out), int(splits)?, int(count)?],
    ))
}

/// db[n] = Σ_rows dY[m,n].
#[derive(Clone, Debug)]
pub struct BiasGrad {
    pub dy: u64,
    pub db: u64,
    /// Split scratch (`SplitPlan::for_bias_grad`), 0 when none.
    pub work: u64,
    pub m: usize,
    pub n: usize,
}

impl Kernel for BiasGrad {
    fn split(&self, sm: usize) -> Option<(usize, usize)> {
        let plan = SplitPlan::for_bias_grad(self.m, self.n, sm);
        (plan.splits > 1).then_some((plan.splits, self.n))
    }

    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let (m, n) = (self.m, self.n);
        let plan = SplitPlan::for_bias_grad(m, n, sm);
        let target = if plan.splits == 1 { self.db } else { self.work };
        if target == 0 {
            fail!(
                Plan,
                "bias_grad {m}×{n} splits over the rows ({} splits) but got no work buffer",
                plan.splits
            );
        }
        // blockDim must be exactly (32, 8, 1) (kernels/README.md).
        let mut v = vec![Launch {
            kernel: BIAS_GRAD,
            grid: (cdiv(n, 32) as u32, plan.splits as u32, 1),
            block: (32, 8, 1),
            args: vec![
                Arg::Ptr(self.dy),
                Arg::Ptr(target),
                int(m)?,
                int(n)?,
                int(plan.per_split)?,
            ],
        }];
        if plan.splits > 1 {
            v.push(reduce_splits(self.work, self.db, plan.splits, n, sm)?);
        }
        Ok(v)
    }

    fn work(&self) -> (f64, f64) {
        let (m, n) = (self.m as f64, self.n as f64);
        (m * n, 4.0 * (m * n + n))
    }

    /// As `WeightGrad`: each thread's column sums of its own rows, the
    /// partials added in thread order.
    fn host_parts(&self) -> HostParts {
        HostParts::RowSums(self.m)
    }

    fn host_scratch(&self, threads: usize) -> usize {
        row_sums_scratch(self.n, threads)
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let n = self.n;
        let r = part.range(self.m, 1);
        cpu::column_sums_of(
            host(row_at(self.dy, r.start, n), r.len() * n),
            host(part.partial_of(self.db, n), n),
            r.len(),
            n,
            0..n,
        );
    }

    unsafe fn finish_on_host_part(&self, part: &HostPart) {
        part.add_partials(self.db, self.n);
    }

    unsafe fn run_on_host(&self) {
        let (m, n) = (self.m, self.n);
        cpu::column_sums(host(self.dy, m * n), host(self.db, n), m, n)
    }
}

/// acc[i] += add[i] over `count` floats: one micro-batch's gradient added
/// into the step's (`--accumulate`), in micro-batch order.
#[derive(Clone, Debug)]
pub struct AccumulateAdd {
    pub acc: u64,
    pub add: u64,
    pub count: usize,
}

impl Kernel for AccumulateAdd {
    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        Ok(vec![launch(
            ACCUMULATE_ADD,
            elementwise_grid(self.count, sm),
            256,
            vec![Arg::Ptr(self.acc), Arg::Ptr(self.add), int(self.count)?],
        )])
    }

    fn work(&self) -> (f64, f64) {
        let n = self.count as f64;
        (n, 12.0 * n)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Split
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let r = part.range(self.count, 64);
        if !r.is_empty() {
            AccumulateAdd {
                acc: row_at(self.acc, r.start, 1),
                add: row_at(self.add, r.start, 1),
                count: r.len(),
            }
            .run_on_host();
        }
    }

    unsafe fn run_on_host(&self) {
        let n = self.count;
        cpu::accumulate_add(host(self.acc, n), host(self.add, n))
    }
}
