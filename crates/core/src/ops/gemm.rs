//! The dense layer's three products (kernels/gemm_fp32.cu on the CUDA
//! cores, kernels/gemm_tc.cu on the tensor cores): forward with the bias and
//! activation fused, the input gradient with the ReLU mask fused, and the
//! weight gradient. Small shapes split their reduction (`SplitPlan`) and are
//! finished by reduce.cu's kernels.

use super::launch::{cdiv, elementwise_grid, int, launch, Arg, Launch};
use super::reduce::reduce_splits;
use super::split::{SplitPlan, TILE};
use super::{host, row_at, row_sums_scratch, HostPart, HostParts, Kernel};
use crate::{cpu, fail, Activation, GemmShape, Precision, Result};

/// Kernels by precision (fp32, tf32, bf16), indexed by `Precision as usize`.
pub const FORWARD: [&str; 3] = ["gemm_fwd_f32", "gemm_fwd_tf32", "gemm_fwd_bf16"];
pub const INPUT_GRAD: [&str; 3] = ["gemm_dx_f32", "gemm_dx_tf32", "gemm_dx_bf16"];
pub const WEIGHT_GRAD: [&str; 3] = ["gemm_dw_f32", "gemm_dw_tf32", "gemm_dw_bf16"];
pub const FORWARD_PARTIAL: [&str; 3] = [
    "gemm_fwd_partial_f32",
    "gemm_fwd_partial_tf32",
    "gemm_fwd_partial_bf16",
];
pub const INPUT_GRAD_PARTIAL: [&str; 3] = [
    "gemm_dx_partial_f32",
    "gemm_dx_partial_tf32",
    "gemm_dx_partial_bf16",
];

/// Block size: 256 threads (fp32), 128 (tensor cores).
fn block(p: Precision) -> u32 {
    match p {
        Precision::Fp32 => 256,
        _ => 128,
    }
}

fn dims(s: GemmShape) -> Result<[Arg; 3]> {
    Ok([int(s.m)?, int(s.n)?, int(s.k)?])
}

/// Y[m,n] = act(X[m,k]·W[k,n] + b); `b` may be 0 (no bias).
#[derive(Clone, Debug)]
pub struct Forward {
    pub p: Precision,
    pub x: u64,
    pub w: u64,
    pub b: u64,
    pub y: u64,
    /// Split-K scratch (`SplitPlan::for_forward`), 0 when none.
    pub work: u64,
    pub shape: GemmShape,
    pub act: Activation,
}

impl Kernel for Forward {
    fn split(&self, sm: usize) -> Option<(usize, usize)> {
        let plan = SplitPlan::for_forward(self.shape, sm);
        (plan.splits > 1).then_some((plan.splits, self.shape.y_len()))
    }

    fn precision(&self) -> Option<Precision> {
        Some(self.p)
    }

    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let (s, p) = (self.shape, self.p);
        let plan = SplitPlan::for_forward(s, sm);
        let grid = (cdiv(s.n, TILE), cdiv(s.m, TILE), plan.splits);
        if plan.splits == 1 {
            let mut args = vec![
                Arg::Ptr(self.x),
                Arg::Ptr(self.w),
                Arg::Ptr(self.b),
                Arg::Ptr(self.y),
            ];
            args.extend(dims(s)?);
            args.push(Arg::I32(self.act as i32));
            return Ok(vec![launch(FORWARD[p as usize], grid, block(p), args)]);
        }
        if self.work == 0 {
            fail!(
                Plan,
                "gemm_fwd {s} splits over k ({} splits) but got no work buffer",
                plan.splits
            );
        }
        let mut args = vec![Arg::Ptr(self.x), Arg::Ptr(self.w), Arg::Ptr(self.work)];
        args.extend(dims(s)?);
        args.push(int(plan.per_split)?);
        Ok(vec![
            launch(FORWARD_PARTIAL[p as usize], grid, block(p), args),
            launch(
                super::reduce::SPLITK_BIAS_ACT,
                elementwise_grid(s.y_len(), sm),
                256,
                vec![
                    Arg::Ptr(self.work),
                    Arg::Ptr(self.b),
                    Arg::Ptr(self.y),
                    int(plan.splits)?,
                    int(s.m)?,
                    int(s.n)?,
                    Arg::I32(self.act as i32),
                ],
            ),
        ])
    }

    fn work(&self) -> (f64, f64) {
        let s = self.shape;
        let bytes = 4.0 * (s.x_len() + s.w_len() + s.n + s.y_len()) as f64;
        (s.flops(), bytes)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Rows(self.shape.m)
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let s = self.shape;
        let r = part.range(s.m, 1);
        if !r.is_empty() {
            Forward {
                x: row_at(self.x, r.start, s.k),
                y: row_at(self.y, r.start, s.n),
                shape: GemmShape { m: r.len(), ..s },
                ..self.clone()
            }
            .run_on_host();
        }
    }

    unsafe fn run_on_host(&self) {
        let s = self.shape;
        let zeros = vec![0.0; s.n];
        let bias = if self.b == 0 {
            &zeros[..]
        } else {
            &*host(self.b, s.n)
        };
        cpu::dense_forward(
            host(self.x, s.x_len()),
            host(self.w, s.w_len()),
            bias,
            host(self.y, s.y_len()),
            s,
            self.act,
        );
    }
}

/// dX[m,k] = dY[m,n]·Wᵀ, zeroed where `mask` [m,k] (the previous layer's
/// ReLU output) is not positive; `mask` may be 0 (no mask).
#[derive(Clone, Debug)]
pub struct InputGrad {
    pub p: Precision,
    pub dy: u64,
    pub w: u64,
    pub mask: u64,
    pub dx: u64,
    /// Split-K scratch (`SplitPlan::for_input_grad`), 0 when none.
    pub work: u64,
    pub shape: GemmShape,
}

impl Kernel for InputGrad {
    fn split(&self, sm: usize) -> Option<(usize, usize)> {
        let plan = SplitPlan::for_input_grad(self.shape, sm);
        (plan.splits > 1).then_some((plan.splits, self.shape.x_len()))
    }

    fn precision(&self) -> Option<Precision> {
        Some(self.p)
    }

    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let (s, p) = (self.shape, self.p);
        let plan = SplitPlan::for_input_grad(s, sm);
        let grid = (cdiv(s.k, TILE), cdiv(s.m, TILE), plan.splits);
        if plan.splits == 1 {
            let mut args = vec![
                Arg::Ptr(self.dy),
                Arg::Ptr(self.w),
                Arg::Ptr(self.mask),
                Arg::Ptr(self.dx),
            ];
            args.extend(dims(s)?);
            return Ok(vec![launch(INPUT_GRAD[p as usize], grid, block(p), args)]);
        }
        if self.work == 0 {
            fail!(
                Plan,
                "gemm_dx {s} splits over n ({} splits) but got no work buffer",
                plan.splits
            );
        }
        let mut args = vec![Arg::Ptr(self.dy), Arg::Ptr(self.w), Arg::Ptr(self.work)];
        args.extend(dims(s)?);
        args.push(int(plan.per_split)?);
        Ok(vec![
            launch(INPUT_GRAD_PARTIAL[p as usize], grid, block(p), args),
            launch(
                super::reduce::SPLITK_MASK,
                elementwise_grid(s.x_len(), sm),
                256,
                vec![
                    Arg::Ptr(self.work),
                    Arg::Ptr(self.mask),
                    Arg::Ptr(self.dx),
                    int(plan.splits)?,
                    int(s.x_len())?,
                ],
            ),
        ])
    }

    fn work(&self) -> (f64, f64) {
        let s = self.shape;
        let mask = if self.mask != 0 { s.x_len() } else { 0 };
        let bytes = 4.0 * (s.y_len() + s.w_len() + s.x_len() + mask) as f64;
        (s.flops(), bytes)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Rows(self.shape.m)
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let s = self.shape;
        let r = part.range(s.m, 1);
        if !r.is_empty() {
            InputGrad {
                dy: row_at(self.dy, r.start, s.n),
                mask: row_at(self.mask, r.start, s.k),
                dx: row_at(self.dx, r.start, s.k),
                shape: GemmShape { m: r.len(), ..s },
                ..self.clone()
            }
            .run_on_host();
        }
    }

    unsafe fn run_on_host(&self) {
        let s = self.shape;
        let mask = (self.mask != 0).then(|| &*host(self.mask, s.x_len()));
        cpu::dense_backward_input(
            host(self.dy, s.y_len()),
            host(self.w, s.w_len()),
            mask,
            host(self.dx, s.x_len()),
            s,
        );
    }
}

/// dW[k,n] = Xᵀ[k,m]·dY[m,n].
#[derive(Clone, Debug)]
pub struct WeightGrad {
    pub p: Precision,
    pub x: u64,
    pub dy: u64,
    pub dw: u64,
    /// Split-K scratch (`SplitPlan::for_weight_grad`), 0 when none.
    pub work: u64,
    pub shape: GemmShape,
}

impl Kernel for WeightGrad {
    fn split(&self, sm: usize) -> Option<(usize, usize)> {
        let plan = SplitPlan::for_weight_grad(self.shape, sm);
        (plan.splits > 1).then_some((plan.splits, self.shape.w_len()))
    }

    fn precision(&self) -> Option<Precision> {
        Some(self.p)
    }

    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let (s, p) = (self.shape, self.p);
        let plan = SplitPlan::for_weight_grad(s, sm);
        let target = if plan.splits == 1 { self.dw } else { self.work };
        if target == 0 {
            fail!(
                Plan,
                "gemm_dw {s} splits over the rows ({} splits) but got no work buffer",
                plan.splits
            );
        }
        let mut v = vec![launch(
            WEIGHT_GRAD[p as usize],
            (cdiv(s.n, TILE), cdiv(s.k, TILE), plan.splits),
            block(p),
            vec![
                Arg::Ptr(self.x),
                Arg::Ptr(self.dy),
                Arg::Ptr(target),
                int(s.m)?,
                int(s.n)?,
                int(s.k)?,
                int(plan.per_split)?,
            ],
        )];
        if plan.splits > 1 {
            v.push(reduce_splits(
                self.work,
                self.dw,
                plan.splits,
                s.w_len(),
                sm,
            )?);
        }
        Ok(v)
    }

    fn work(&self) -> (f64, f64) {
        let s = self.shape;
        let bytes = 4.0 * (s.x_len() + s.y_len() + s.w_len()) as f64;
        (s.flops(), bytes)
    }

    /// Each thread's dW over its own rows of the batch (which its row ops
    /// just wrote into its cache), the partials added in thread order: no
    /// thread reads another's rows, and no barrier runs before it.
    fn host_parts(&self) -> HostParts {
        HostParts::RowSums(self.shape.m)
    }

    fn host_scratch(&self, threads: usize) -> usize {
        row_sums_scratch(self.shape.w_len(), threads)
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let s = self.shape;
        let r = part.range(s.m, 1);
        let share = GemmShape { m: r.len(), ..s };
        cpu::matmul_at_b(
            host(row_at(self.x, r.start, s.k), share.x_len()),
            host(row_at(self.dy, r.start, s.n), share.y_len()),
            host(part.partial_of(self.dw, s.w_len()), s.w_len()),
            share,
        );
    }

    unsafe fn finish_on_host_part(&self, part: &HostPart) {
        part.add_partials(self.dw, self.shape.w_len());
    }

    unsafe fn run_on_host(&self) {
        let s = self.shape;
        cpu::matmul_at_b(
            host(self.x, s.x_len()),
            host(self.dy, s.y_len()),
            host(self.dw, s.w_len()),
            s,
        );
    }
}
