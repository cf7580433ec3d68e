//! A train step as a list of ops, each one kernel launch described by
//! value: the same list is launched eagerly, captured into a CUDA graph, or
//! timed op by op (with its FLOPs and minimum bytes, kernels/README.md's
//! floors) for the per-kernel breakdown.

use super::{Kernels, Precision};
use crate::{Activation, AdamConfig};
use anyhow::Result;
use cudarc::driver::CudaStream;

#[derive(Clone, Debug)]
pub enum Op {
    Gather {
        u8_data: bool,
        data: u64,
        index: u64,
        offset: Offset,
        rows: usize,
        dim: usize,
        out: u64,
    },
    /// Split-K over k into `work` when the output tiles would not fill the
    /// GPU (`SplitPlan::for_forward`), then the bias + activation finish.
    GemmFwd {
        p: Precision,
        x: u64,
        w: u64,
        b: u64,
        y: u64,
        work: u64,
        m: usize,
        n: usize,
        k: usize,
        act: Activation,
    },
    /// Split-K over n into `work` when the output tiles would not fill the
    /// GPU (`SplitPlan::for_input_grad`), then the mask finish.
    GemmDx {
        p: Precision,
        dy: u64,
        w: u64,
        mask: u64,
        dx: u64,
        work: u64,
        m: usize,
        n: usize,
        k: usize,
    },
    GemmDw {
        p: Precision,
        x: u64,
        dy: u64,
        dw: u64,
        work: u64,
        m: usize,
        n: usize,
        k: usize,
    },
    BiasGrad {
        dy: u64,
        db: u64,
        work: u64,
        m: usize,
        n: usize,
    },
    Bce {
        z: u64,
        t: u64,
        dz: u64,
        partial: u64,
        accum: u64,
        count: usize,
        grad_scale: f32,
        weight: f64,
    },
    StepIncrement {
        step: u64,
    },
    Adam {
        params: u64,
        grads: u64,
        m: u64,
        v: u64,
        n: usize,
        step: u64,
        cfg: AdamConfig,
    },
    OffsetAdvance {
        offset: u64,
        rows: usize,
    },
}

/// Where a gather's starting row comes from.
#[derive(Clone, Copy, Debug)]
pub enum Offset {
    Value(usize),
    /// The address of a device int (advanced by `OffsetAdvance`, so a
    /// replayed CUDA graph walks the permutation).
    Device(u64),
}

/// An op with a name saying where in the model it runs.
#[derive(Clone, Debug)]
pub struct NamedOp {
    pub name: String,
    pub op: Op,
}

impl Op {
    /// Enqueues the op's launches (`Op::launches`) on `s`.
    pub fn launch(&self, k: &Kernels, s: &CudaStream) -> Result<()> {
        for l in self.launches(k.sm_count())? {
            k.run(s, &l)?;
        }
        Ok(())
    }

    /// (FLOPs, minimum device-memory bytes): each input read once, each
    /// output written once. For a split-K fwd / dx this stays the fused
    /// product's floor (the partials' round trip is overhead, not work).
    pub fn work(&self) -> (f64, f64) {
        let f = |v: usize| v as f64;
        match *self {
            Op::Gather {
                u8_data, rows, dim, ..
            } => (
                f(rows * dim),
                f(rows * dim) * if u8_data { 5.0 } else { 8.0 } + f(4 * rows),
            ),
            Op::GemmFwd { m, n, k, .. } => (2.0 * f(m * n * k), 4.0 * f(m * k + k * n + n + m * n)),
            Op::GemmDx { m, n, k, mask, .. } => (
                2.0 * f(m * n * k),
                4.0 * f(m * n + k * n + m * k) + if mask != 0 { 4.0 * f(m * k) } else { 0.0 },
            ),
            Op::GemmDw { m, n, k, .. } => (2.0 * f(m * n * k), 4.0 * f(m * k + m * n + k * n)),
            Op::BiasGrad { m, n, .. } => (f(m * n), 4.0 * f(m * n + n)),
            Op::Bce { count, .. } => (15.0 * f(count), 12.0 * f(count)),
            Op::StepIncrement { .. } | Op::OffsetAdvance { .. } => (1.0, 8.0),
            Op::Adam { n, .. } => (12.0 * f(n), 28.0 * f(n)),
        }
    }

    /// Ops that change state the next launch depends on (so they are not
    /// repeated when timed in isolation).
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, Op::OffsetAdvance { .. })
    }

    /// The op with any device-held gather offset replaced by 0, so it can be
    /// repeated without walking off the permutation.
    pub fn repeatable(&self) -> Op {
        match self.clone() {
            Op::Gather {
                u8_data,
                data,
                index,
                rows,
                dim,
                out,
                ..
            } => Op::Gather {
                u8_data,
                data,
                index,
                offset: Offset::Value(0),
                rows,
                dim,
                out,
            },
            other => other,
        }
    }
}

/// `len` f32s at a host address.
///
/// # Safety
/// `addr` must point to `len` initialised f32s that nothing else borrows.
unsafe fn host<'a>(addr: u64, len: usize) -> &'a mut [f32] {
    std::slice::from_raw_parts_mut(addr as *mut f32, len)
}

impl Op {
    /// Runs the op's meaning on the CPU (with the CPU ops), reading and
    /// writing through its addresses as *host* memory: so a whole op list,
    /// built exactly as the GPU gets it, can be checked without a GPU.
    ///
    /// # Safety
    /// Every address in the op must point to host memory of the size its
    /// shapes imply (f32 matrices, an i32 step/offset, an f64 loss sum, u32
    /// row indices, u8 or f32 data), with no live Rust references to it.
    pub unsafe fn execute_on_host(&self) {
        use crate::cpu;
        match *self {
            Op::Gather {
                u8_data,
                data,
                index,
                offset,
                rows,
                dim,
                out,
            } => {
                let start = match offset {
                    Offset::Value(o) => o,
                    Offset::Device(ptr) => *(ptr as *const i32) as usize,
                };
                let rows_index = std::slice::from_raw_parts((index as *const u32).add(start), rows);
                let out = host(out, rows * dim);
                for (o, &r) in out.chunks_exact_mut(dim).zip(rows_index) {
                    let first = r as usize * dim;
                    for (d, v) in o.iter_mut().enumerate() {
                        *v = if u8_data {
                            *(data as *const u8).add(first + d) as f32 / 255.0
                        } else {
                            *(data as *const f32).add(first + d)
                        };
                    }
                }
            }
            Op::GemmFwd {
                x,
                w,
                b,
                y,
                m,
                n,
                k,
                act,
                ..
            } => {
                let zeros = vec![0.0; n];
                let bias = if b == 0 { &zeros[..] } else { &*host(b, n) };
                cpu::dense_forward(
                    host(x, m * k),
                    host(w, k * n),
                    bias,
                    host(y, m * n),
                    m,
                    k,
                    n,
                    act,
                );
            }
            Op::GemmDx {
                dy,
                w,
                mask,
                dx,
                m,
                n,
                k,
                ..
            } => {
                let mask = if mask == 0 {
                    None
                } else {
                    Some(&*host(mask, m * k))
                };
                cpu::dense_backward_input(
                    host(dy, m * n),
                    host(w, k * n),
                    mask,
                    host(dx, m * k),
                    m,
                    n,
                    k,
                );
            }
            Op::GemmDw {
                x, dy, dw, m, n, k, ..
            } => cpu::matmul_at_b(host(x, m * k), host(dy, m * n), host(dw, k * n), m, k, n),
            Op::BiasGrad { dy, db, m, n, .. } => {
                cpu::column_sums(host(dy, m * n), host(db, n), m, n)
            }
            Op::Bce {
                z,
                t,
                dz,
                accum,
                count,
                grad_scale,
                weight,
                ..
            } => {
                let sum =
                    cpu::bce_logits(host(z, count), host(t, count), host(dz, count), grad_scale);
                *(accum as *mut f64) += weight * sum;
            }
            Op::StepIncrement { step } => *(step as *mut i32) += 1,
            Op::Adam {
                params,
                grads,
                m,
                v,
                n,
                step,
                ref cfg,
            } => {
                let t = *(step as *const i32) as u64;
                cpu::adam_step(
                    host(params, n),
                    host(grads, n),
                    host(m, n),
                    host(v, n),
                    t,
                    cfg,
                );
            }
            Op::OffsetAdvance { offset, rows } => *(offset as *mut i32) += rows as i32,
        }
    }
}
