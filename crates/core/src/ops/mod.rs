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
    /// Host scratch (f64 words) its shares leave for `finish_on_host_part`
    /// when `threads` threads share it; 0 when it needs no finish.
    fn host_scratch(&self, _threads: usize) -> usize {
        0
    }
    /// Combines what the shares left in `part.scratch`, once every share
    /// has run: each thread its share of the combining.
    ///
    /// # Safety
    /// As [`Kernel::run_on_host`].
    unsafe fn finish_on_host_part(&self, _part: &HostPart) {}
}

/// How the host's threads share an op in a replayed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostParts {
    /// One thread runs it (the others wait).
    Whole,
    /// Row `r` of its outputs depends only on row `r` of its row inputs, for
    /// `m` rows: every thread takes the same share of the rows in every such
    /// op, so consecutive `Rows(m)` ops need no barrier between them.
    /// That needs every buffer such a run of ops shares to be laid out at
    /// one row width throughout (a step's buffers are one per layer), or
    /// one thread's rows would overlap another's.
    Rows(usize),
    /// Each of its `m` input rows adds a term to outputs all rows share (a
    /// weight or bias gradient): every thread sums its `Rows(m)` share into
    /// a partial of its own, and `finish_on_host_part` adds the partials in
    /// thread order at the next barrier. It runs among `Rows(m)` ops with no
    /// barrier; its outputs are whole only after that barrier, so no row op
    /// may read them.
    RowSums(usize),
    /// The threads take disjoint shares of its outputs, reading all inputs.
    Split,
}

impl HostParts {
    /// The rows a row-shared op is shared over (`Rows` and `RowSums`).
    pub fn rows(self) -> Option<usize> {
        match self {
            HostParts::Rows(m) | HostParts::RowSums(m) => Some(m),
            HostParts::Whole | HostParts::Split => None,
        }
    }
}

/// One thread's share of an op: `index` of `count`, and the host scratch
/// the op's shares write (`Kernel::host_scratch` f64 words, laid out as the
/// op chooses), which lives until its finish has run.
pub struct HostPart {
    pub index: usize,
    pub count: usize,
    pub scratch: *mut f64,
}

impl HostPart {
    /// This share of `0..n`, its bounds on multiples of `align`.
    pub fn range(&self, n: usize, align: usize) -> std::ops::Range<usize> {
        let units = n.div_ceil(align);
        let at = |i: usize| (units * i / self.count * align).min(n);
        at(self.index)..at(self.index + 1)
    }

    /// Where this share of a `RowSums` op writes its partial of the `len`
    /// f32 outputs at `out`: thread 0 into `out` itself, thread i into slot
    /// i − 1 of the op's scratch (`row_sums_scratch` words).
    pub fn partial_of(&self, out: u64, len: usize) -> u64 {
        if self.index == 0 {
            out
        } else {
            self.scratch as u64 + ((self.index - 1) * len * 4) as u64
        }
    }

    /// This thread's share of a `RowSums` op's finish: over its share of
    /// the `len` outputs, out += partial 1, then partial 2, …: each output
    /// summed in thread order, the same bits run after run.
    ///
    /// # Safety
    /// `out` holds `len` f32s of host memory and every share's partial has
    /// been written.
    pub unsafe fn add_partials(&self, out: u64, len: usize) {
        let r = self.range(len, 16);
        if r.is_empty() {
            return;
        }
        let acc = host(row_at(out, r.start, 1), r.len());
        for i in 1..self.count {
            let partial = self.scratch as u64 + ((i - 1) * len * 4) as u64;
            crate::cpu::accumulate_add(acc, host(row_at(partial, r.start, 1), r.len()));
        }
    }
}

/// Scratch (f64 words) for the partials of a `RowSums` op of `len` f32
/// outputs on `threads` threads: one per thread after the first.
pub fn row_sums_scratch(len: usize, threads: usize) -> usize {
    (threads.saturating_sub(1) * len).div_ceil(2)
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

    pub fn host_scratch(&self, threads: usize) -> usize {
        each!(self, k => k.host_scratch(threads))
    }

    /// # Safety
    /// As [`Kernel::finish_on_host_part`].
    pub unsafe fn finish_on_host_part(&self, part: &HostPart) {
        each!(self, k => k.finish_on_host_part(part))
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
