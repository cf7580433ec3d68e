//! The ops of a training step, one kernel launch (or a fixed few) each,
//! described by value. Each op family lives beside its kernels: `gemm.rs`
//! for kernels/gemm_fp32.cu and gemm_tc.cu, `reduce.rs` for reduce.cu,
//! `loss.rs`, `adam.rs`, `lamb.rs`, `data.rs` for theirs. A family module holds its
//! ops, their launch plans, their work (FLOPs and minimum bytes: the floors
//! of kernels/README.md) and their meaning on the host (the CPU ops run on
//! host addresses). This module only dispatches.
//!
//! The same op list is launched eagerly, recorded into a CUDA graph, run by
//! the host emulator, executed on host memory by the CPU, or timed op by op.

pub mod adam;
pub mod data;
pub mod gemm;
pub mod lamb;
pub mod launch;
pub mod loss;
pub mod reduce;
pub mod signature;
pub mod split;

pub use adam::{AdamStep, StepIncrement};
pub use data::{Gather, Offset, OffsetAdvance};
pub use gemm::{Forward, InputGrad, WeightGrad};
pub use lamb::LambStep;
pub use launch::{Arg, Launch};
pub use loss::{Bce, LOSS_BLOCKS};
pub use reduce::{AccumulateAdd, BiasGrad};
pub use split::SplitPlan;

use crate::{Precision, Result};

/// What one family's op must say about itself.
pub trait Kernel {
    /// Its launches on a GPU with `sm_count` SMs, in order.
    fn launches(&self, sm_count: usize) -> Result<Vec<Launch>>;
    /// (FLOPs, minimum device-memory bytes): each input read once, each
    /// output written once. A split-K product keeps the fused product's
    /// floor (the partials' round trip is overhead, not work).
    fn work(&self) -> (f64, f64);
    /// Its meaning, computed by the CPU ops through its addresses taken as
    /// host memory.
    ///
    /// # Safety
    /// Every address must point to host memory of the size the op's shapes
    /// imply, with no live Rust references to it.
    unsafe fn run_on_host(&self);
    /// How its reduction is split on `sm_count` SMs: (splits, output
    /// elements), or None when it is not.
    fn split(&self, _sm_count: usize) -> Option<(usize, usize)> {
        None
    }
    /// The product precision, for ops that run on tensor cores or not.
    fn precision(&self) -> Option<Precision> {
        None
    }
    /// How the host's threads share it when a recorded step is replayed.
    fn host_parts(&self) -> HostParts {
        HostParts::Whole
    }
    /// Its share `part.index` of `part.count` (for `Rows` and `Split` ops;
    /// every share together computes `run_on_host`'s bits).
    ///
    /// # Safety
    /// As [`Kernel::run_on_host`]; the shares of one op run concurrently.
    unsafe fn run_on_host_part(&self, part: &HostPart) {
        if part.index == 0 {
            self.run_on_host();
        }
    }
    /// Host scratch f64s its shares leave for `finish_on_host`.
    fn host_sums(&self) -> usize {
        0
    }
    /// Combines the shares' `sums` after they all ran (one thread).
    ///
    /// # Safety
    /// As [`Kernel::run_on_host`].
    unsafe fn finish_on_host(&self, _sums: &[f64]) {}
}

/// How the host's threads share an op in a replayed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostParts {
    /// One thread runs it (the others wait).
    Whole,
    /// Row `r` of its outputs depends only on row `r` of its row inputs, for
    /// `m` rows: every thread takes the same share of the rows in every such
    /// op, so consecutive `Rows(m)` ops need no barrier between them.
    Rows(usize),
    /// The threads take disjoint shares of its outputs, reading all inputs.
    Split,
}

/// One thread's share of an op: `index` of `count`, and the host scratch
/// its share writes (`Kernel::host_sums` f64s, each share its own), which
/// lives for the replay.
pub struct HostPart {
    pub index: usize,
    pub count: usize,
    pub sums: *mut f64,
}

impl HostPart {
    /// This share of `0..n`, its bounds on multiples of `align`.
    pub fn range(&self, n: usize, align: usize) -> std::ops::Range<usize> {
        let units = n.div_ceil(align);
        let at = |i: usize| (units * i / self.count * align).min(n);
        at(self.index)..at(self.index + 1)
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    Gather(Gather),
    GemmFwd(Forward),
    GemmDx(InputGrad),
    GemmDw(WeightGrad),
    BiasGrad(BiasGrad),
    AccumulateAdd(AccumulateAdd),
    Bce(Bce),
    StepIncrement(StepIncrement),
    Adam(AdamStep),
    Lamb(LambStep),
    OffsetAdvance(OffsetAdvance),
}

/// `$body` with `$k` bound to the variant's family op.
macro_rules! each {
    ($op:expr, $k:ident => $body:expr) => {
        match $op {
            Op::Gather($k) => $body,
            Op::GemmFwd($k) => $body,
            Op::GemmDx($k) => $body,
            Op::GemmDw($k) => $body,
            Op::BiasGrad($k) => $body,
            Op::AccumulateAdd($k) => $body,
            Op::Bce($k) => $body,
            Op::StepIncrement($k) => $body,
            Op::Adam($k) => $body,
            Op::Lamb($k) => $body,
            Op::OffsetAdvance($k) => $body,
        }
    };
}

impl Op {
    pub fn launches(&self, sm_count: usize) -> Result<Vec<Launch>> {
        each!(self, k => k.launches(sm_count))
    }

    pub fn work(&self) -> (f64, f64) {
        each!(self, k => k.work())
    }

    /// # Safety
    /// As [`Kernel::run_on_host`].
    pub unsafe fn run_on_host(&self) {
        each!(self, k => k.run_on_host())
    }

    pub fn split(&self, sm_count: usize) -> Option<(usize, usize)> {
        each!(self, k => k.split(sm_count))
    }

    pub fn precision(&self) -> Option<Precision> {
        each!(self, k => k.precision())
    }

    /// How the host shares it: `Whole` for tensor-core precisions, whose
    /// operands the host rounds into copies first.
    pub fn host_parts(&self) -> HostParts {
        match self.precision() {
            Some(p) if p != Precision::Fp32 => HostParts::Whole,
            _ => each!(self, k => k.host_parts()),
        }
    }

    /// # Safety
    /// As [`Kernel::run_on_host_part`].
    pub unsafe fn run_on_host_part(&self, part: &HostPart) {
        each!(self, k => k.run_on_host_part(part))
    }

    pub fn host_sums(&self) -> usize {
        each!(self, k => k.host_sums())
    }

    /// # Safety
    /// As [`Kernel::finish_on_host`].
    pub unsafe fn finish_on_host(&self, sums: &[f64]) {
        each!(self, k => k.finish_on_host(sums))
    }

    /// Ops that change state the next launch depends on (so they are not
    /// repeated when timed in isolation).
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, Op::OffsetAdvance(_))
    }

    /// The op with any device-held gather offset replaced by 0, so it can be
    /// repeated without walking off the permutation.
    pub fn repeatable(&self) -> Op {
        match self {
            Op::Gather(g) => Op::Gather(Gather {
                offset: Offset::Value(0),
                ..g.clone()
            }),
            other => other.clone(),
        }
    }
}

/// An op with a name saying where in the model it runs.
#[derive(Clone, Debug)]
pub struct NamedOp {
    pub name: String,
    pub op: Op,
}

/// `len` f32s at a host address.
///
/// # Safety
/// `addr` must point to `len` initialised f32s that nothing else borrows.
pub(crate) unsafe fn host<'a>(addr: u64, len: usize) -> &'a mut [f32] {
    std::slice::from_raw_parts_mut(addr as *mut f32, len)
}

/// The address of row `row` of a [rows, width] f32 buffer at `addr` (0, a
/// buffer the op does not have, stays 0): where a share of the rows starts.
pub(crate) fn row_at(addr: u64, row: usize, width: usize) -> u64 {
    if addr == 0 {
        0
    } else {
        addr + (row * width * 4) as u64
    }
}

/// Every kernel an op family can launch: kernels/*.cu's, less the
/// test-only ones.
pub fn kernel_names() -> Vec<&'static str> {
    signature::KERNELS
        .iter()
        .filter(|k| !k.test_only)
        .map(|k| k.name)
        .collect()
}
