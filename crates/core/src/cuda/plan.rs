//! Launch plans: which kernels an op launches, with what grid, block and
//! arguments, computed exactly as kernels/README.md specifies. Pure functions
//! of the op and the SM count, so the same plan runs on a GPU (`Kernels`)
//! and in the host emulator (crates/emu), and can be inspected in tests.

use super::ops::Op;
use super::{Offset, Precision};
use anyhow::{bail, Result};

/// Blocks of `bce_logits` (fixed, so the partial-sum buffer has a fixed size).
pub const LOSS_BLOCKS: usize = 1024;
const TILE: usize = 64;

/// How a product's reduction is split (split-K) so small shapes fill the
/// GPU: over the batch rows for dW and db, over K for the forward product,
/// over N for the input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    pub splits: usize,
    /// Reduction indices per split (batch rows for dW / db; the kernels'
    /// `k_per_split` / `n_per_split` for fwd / dx).
    pub rows_per_split: usize,
}

impl SplitPlan {
    /// kernels/README.md "Choosing splits": about two blocks per SM, whole
    /// 32-row tiles per split. A pure function of the shape and SM count, so
    /// the result's bits are reproducible.
    pub fn new(m: usize, tiles: usize, sm_count: usize) -> Self {
        let splits0 = cdiv(2 * sm_count, tiles.max(1)).clamp(1, cdiv(m, 32).max(1));
        let rows_per_split = cdiv(cdiv(m, splits0), 32) * 32;
        SplitPlan {
            splits: cdiv(m, rows_per_split),
            rows_per_split,
        }
    }

    pub fn for_weight_grad(m: usize, k: usize, n: usize, sm_count: usize) -> Self {
        Self::new(m, cdiv(n, TILE) * cdiv(k, TILE), sm_count)
    }

    pub fn for_bias_grad(m: usize, n: usize, sm_count: usize) -> Self {
        Self::new(m, cdiv(n, 32), sm_count)
    }

    /// Y[m,n] = X[m,k]·W[k,n], split over k (kernels/README.md "Small
    /// shapes"): only when the 64×64 output tiles are fewer than the SMs;
    /// otherwise one split (the fused kernel).
    pub fn for_forward(m: usize, n: usize, k: usize, sm_count: usize) -> Self {
        Self::for_product(cdiv(n, TILE) * cdiv(m, TILE), k, sm_count)
    }

    /// dX[m,k] = dY[m,n]·Wᵀ, split over n under the same rule.
    pub fn for_input_grad(m: usize, n: usize, k: usize, sm_count: usize) -> Self {
        Self::for_product(cdiv(k, TILE) * cdiv(m, TILE), n, sm_count)
    }

    fn for_product(tiles: usize, reduction: usize, sm_count: usize) -> Self {
        if tiles >= sm_count {
            SplitPlan {
                splits: 1,
                rows_per_split: reduction,
            }
        } else {
            Self::new(reduction, tiles, sm_count)
        }
    }

    /// Scratch floats the split path needs for an output of `outputs`
    /// elements (splits·outputs; 0 when unsplit, the result is written
    /// directly).
    pub fn partial_len(&self, outputs: usize) -> usize {
        if self.splits > 1 {
            self.splits * outputs
        } else {
            0
        }
    }
}

/// One kernel argument, by value (device addresses as u64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Ptr(u64),
    I32(i32),
    F32(f32),
    F64(f64),
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub args: Vec<Arg>,
}

/// The GEMM kernels by product and precision (kernels/gemm_fp32.cu, gemm_tc.cu).
const GEMM_FWD: [&str; 3] = ["gemm_fwd_f32", "gemm_fwd_tf32", "gemm_fwd_bf16"];
const GEMM_DX: [&str; 3] = ["gemm_dx_f32", "gemm_dx_tf32", "gemm_dx_bf16"];
const GEMM_DW: [&str; 3] = ["gemm_dw_f32", "gemm_dw_tf32", "gemm_dw_bf16"];
const GEMM_FWD_PARTIAL: [&str; 3] = [
    "gemm_fwd_partial_f32",
    "gemm_fwd_partial_tf32",
    "gemm_fwd_partial_bf16",
];
const GEMM_DX_PARTIAL: [&str; 3] = [
    "gemm_dx_partial_f32",
    "gemm_dx_partial_tf32",
    "gemm_dx_partial_bf16",
];

/// Every kernel a plan can name.
pub fn kernel_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = [
        GEMM_FWD,
        GEMM_DX,
        GEMM_DW,
        GEMM_FWD_PARTIAL,
        GEMM_DX_PARTIAL,
    ]
    .concat();
    v.extend([
        "reduce_splits",
        "splitk_bias_act",
        "splitk_mask",
        "bias_grad",
        "bce_logits",
        "loss_accumulate",
        "adam_step",
        "step_increment",
        "gather_u8",
        "gather_f32",
        "gather_u8_dev",
        "gather_f32_dev",
        "offset_advance",
        "lamb_moments",
        "lamb_trust_ratio",
        "lamb_apply",
    ]);
    v
}

fn cdiv(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

fn i(v: usize) -> Result<Arg> {
    match i32::try_from(v) {
        Ok(v) => Ok(Arg::I32(v)),
        Err(_) => bail!("size {v} exceeds the kernels' int range"),
    }
}

fn launch(kernel: &'static str, grid: (usize, usize, usize), block: u32, args: Vec<Arg>) -> Launch {
    Launch {
        kernel,
        grid: (grid.0 as u32, grid.1 as u32, grid.2 as u32),
        block: (block, 1, 1),
        args,
    }
}

/// GEMM block size: 256 threads (fp32), 128 (tensor cores).
fn gemm_block(p: Precision) -> u32 {
    match p {
        Precision::Fp32 => 256,
        _ => 128,
    }
}

/// Grid of the grid-stride elementwise kernels (split-K finishes, Adam): a
/// float4 per thread, at most 4 blocks per SM.
fn elementwise_grid(count: usize, sm_count: usize) -> (usize, usize, usize) {
    (cdiv(count, 1024).clamp(1, 4 * sm_count), 1, 1)
}

fn reduce_splits(partial: u64, out: u64, splits: usize, count: usize, sm: usize) -> Result<Launch> {
    Ok(launch(
        "reduce_splits",
        elementwise_grid(count, sm),
        256,
        vec![Arg::Ptr(partial), Arg::Ptr(out), i(splits)?, i(count)?],
    ))
}

impl Op {
    /// The launches of this op on a GPU with `sm_count` SMs, in order.
    pub fn launches(&self, sm_count: usize) -> Result<Vec<Launch>> {
        let sm = sm_count;
        Ok(match *self {
            Op::Gather {
                u8_data,
                data,
                index,
                offset,
                rows,
                dim,
                out,
            } => {
                let (kernel, offset_arg) = match (offset, u8_data) {
                    (Offset::Value(o), true) => ("gather_u8", i(o)?),
                    (Offset::Value(o), false) => ("gather_f32", i(o)?),
                    (Offset::Device(p), true) => ("gather_u8_dev", Arg::Ptr(p)),
                    (Offset::Device(p), false) => ("gather_f32_dev", Arg::Ptr(p)),
                };
                vec![launch(
                    kernel,
                    (rows.clamp(1, 65_535), 1, 1),
                    256,
                    vec![
                        Arg::Ptr(data),
                        Arg::Ptr(index),
                        offset_arg,
                        i(rows)?,
                        i(dim)?,
                        Arg::Ptr(out),
                    ],
                )]
            }
            Op::GemmFwd {
                p,
                x,
                w,
                b,
                y,
                work,
                m,
                n,
                k,
                act,
            } => {
                let plan = SplitPlan::for_forward(m, n, k, sm);
                let grid = (cdiv(n, TILE), cdiv(m, TILE), plan.splits);
                let shape = [i(m)?, i(n)?, i(k)?];
                if plan.splits == 1 {
                    let mut args = vec![Arg::Ptr(x), Arg::Ptr(w), Arg::Ptr(b), Arg::Ptr(y)];
                    args.extend(shape);
                    args.push(Arg::I32(act as i32));
                    vec![launch(GEMM_FWD[p as usize], grid, gemm_block(p), args)]
                } else {
                    if work == 0 {
                        bail!(
                            "gemm_fwd {m}×{n}×{k} splits over k ({} splits) but got no work buffer",
                            plan.splits
                        );
                    }
                    let mut args = vec![Arg::Ptr(x), Arg::Ptr(w), Arg::Ptr(work)];
                    args.extend(shape);
                    args.push(i(plan.rows_per_split)?);
                    vec![
                        launch(GEMM_FWD_PARTIAL[p as usize], grid, gemm_block(p), args),
                        launch(
                            "splitk_bias_act",
                            elementwise_grid(m * n, sm),
                            256,
                            vec![
                                Arg::Ptr(work),
                                Arg::Ptr(b),
                                Arg::Ptr(y),
                                i(plan.splits)?,
                                i(m)?,
                                i(n)?,
                                Arg::I32(act as i32),
                            ],
                        ),
                    ]
                }
            }
            Op::GemmDx {
                p,
                dy,
                w,
                mask,
                dx,
                work,
                m,
                n,
                k,
            } => {
                let plan = SplitPlan::for_input_grad(m, n, k, sm);
                let grid = (cdiv(k, TILE), cdiv(m, TILE), plan.splits);
                let shape = [i(m)?, i(n)?, i(k)?];
                if plan.splits == 1 {
                    let mut args = vec![Arg::Ptr(dy), Arg::Ptr(w), Arg::Ptr(mask), Arg::Ptr(dx)];
                    args.extend(shape);
                    vec![launch(GEMM_DX[p as usize], grid, gemm_block(p), args)]
                } else {
                    if work == 0 {
                        bail!(
                            "gemm_dx {m}×{n}×{k} splits over n ({} splits) but got no work buffer",
                            plan.splits
                        );
                    }
                    let mut args = vec![Arg::Ptr(dy), Arg::Ptr(w), Arg::Ptr(work)];
                    args.extend(shape);
                    args.push(i(plan.rows_per_split)?);
                    vec![
                        launch(GEMM_DX_PARTIAL[p as usize], grid, gemm_block(p), args),
                        launch(
                            "splitk_mask",
                            elementwise_grid(m * k, sm),
                            256,
                            vec![
                                Arg::Ptr(work),
                                Arg::Ptr(mask),
                                Arg::Ptr(dx),
                                i(plan.splits)?,
                                i(m * k)?,
                            ],
                        ),
                    ]
                }
            }
            Op::GemmDw {
                p,
                x,
                dy,
                dw,
                work,
                m,
                n,
                k,
            } => {
                let plan = SplitPlan::for_weight_grad(m, k, n, sm);
                let target = if plan.splits == 1 { dw } else { work };
                if target == 0 {
                    bail!("gemm_dw {m}×{n}×{k} splits over the rows ({} splits) but got no work buffer", plan.splits);
                }
                let mut v = vec![launch(
                    GEMM_DW[p as usize],
                    (cdiv(n, TILE), cdiv(k, TILE), plan.splits),
                    gemm_block(p),
                    vec![
                        Arg::Ptr(x),
                        Arg::Ptr(dy),
                        Arg::Ptr(target),
                        i(m)?,
                        i(n)?,
                        i(k)?,
                        i(plan.rows_per_split)?,
                    ],
                )];
                if plan.splits > 1 {
                    v.push(reduce_splits(work, dw, plan.splits, k * n, sm)?);
                }
                v
            }
            Op::BiasGrad { dy, db, work, m, n } => {
                let plan = SplitPlan::for_bias_grad(m, n, sm);
                let target = if plan.splits == 1 { db } else { work };
                if target == 0 {
                    bail!(
                        "bias_grad {m}×{n} splits over the rows ({} splits) but got no work buffer",
                        plan.splits
                    );
                }
                // blockDim must be exactly (32, 8, 1) (kernels/README.md).
                let mut v = vec![Launch {
                    kernel: "bias_grad",
                    grid: (cdiv(n, 32) as u32, plan.splits as u32, 1),
                    block: (32, 8, 1),
                    args: vec![
                        Arg::Ptr(dy),
                        Arg::Ptr(target),
                        i(m)?,
                        i(n)?,
                        i(plan.rows_per_split)?,
                    ],
                }];
                if plan.splits > 1 {
                    v.push(reduce_splits(work, db, plan.splits, n, sm)?);
                }
                v
            }
            Op::Bce {
                z,
                t,
                dz,
                partial,
                accum,
                count,
                grad_scale,
                weight,
            } => vec![
                launch(
                    "bce_logits",
                    (LOSS_BLOCKS, 1, 1),
                    256,
                    vec![
                        Arg::Ptr(z),
                        Arg::Ptr(t),
                        Arg::Ptr(dz),
                        Arg::Ptr(partial),
                        i(count)?,
                        Arg::F32(grad_scale),
                    ],
                ),
                launch(
                    "loss_accumulate",
                    (1, 1, 1),
                    256,
                    vec![
                        Arg::Ptr(partial),
                        i(LOSS_BLOCKS)?,
                        Arg::Ptr(accum),
                        Arg::F64(weight),
                    ],
                ),
            ],
            Op::StepIncrement { step } => {
                vec![launch("step_increment", (1, 1, 1), 1, vec![Arg::Ptr(step)])]
            }
            Op::Adam {
                params,
                grads,
                m,
                v,
                n,
                step,
                ref cfg,
            } => vec![launch(
                "adam_step",
                elementwise_grid(n, sm),
                256,
                vec![
                    Arg::Ptr(params),
                    Arg::Ptr(grads),
                    Arg::Ptr(m),
                    Arg::Ptr(v),
                    i(n)?,
                    Arg::Ptr(step),
                    Arg::F32(cfg.lr),
                    Arg::F32(cfg.beta1),
                    Arg::F32(cfg.beta2),
                    Arg::F32(cfg.eps),
                ],
            )],
            Op::OffsetAdvance { offset, rows } => vec![launch(
                "offset_advance",
                (1, 1, 1),
                1,
                vec![Arg::Ptr(offset), i(rows)?],
            )],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_plans_follow_the_readme() {
        // kernels/README.md examples (132 SMs).
        let p = SplitPlan::for_weight_grad(65_536, 784, 128, 132);
        assert_eq!((p.splits, p.rows_per_split), (11, 5_984));
        let p = SplitPlan::for_weight_grad(256, 784, 128, 132);
        assert_eq!((p.splits, p.rows_per_split), (8, 32));
        for m in [1, 31, 33, 257, 65_535] {
            for tiles in [1, 7, 26, 300] {
                let p = SplitPlan::new(m, tiles, 132);
                assert!(p.splits * p.rows_per_split >= m && (p.splits - 1) * p.rows_per_split < m);
            }
        }
    }

    /// (splits, per_split) of the lab model's (784-128-64-32-64-128-784)
    /// forward and input-gradient products: kernels/README.md "Small shapes".
    #[test]
    fn forward_and_input_grad_plans_follow_the_readme() {
        let fwd = |m, n, k| {
            let p = SplitPlan::for_forward(m, n, k, 132);
            (p.splits, p.rows_per_split)
        };
        let dx = |m, n, k| {
            let p = SplitPlan::for_input_grad(m, n, k, 132);
            (p.splits, p.rows_per_split)
        };
        // M = 256: (N, K) per layer
        assert_eq!(fwd(256, 128, 784), (25, 32));
        assert_eq!(fwd(256, 64, 128), (4, 32));
        assert_eq!(fwd(256, 32, 64), (2, 32));
        assert_eq!(fwd(256, 64, 32), (1, 32));
        assert_eq!(fwd(256, 128, 64), (2, 32));
        assert_eq!(fwd(256, 784, 128), (4, 32));
        assert_eq!(dx(256, 784, 128), (25, 32));
        assert_eq!(dx(256, 128, 64), (4, 32));
        assert_eq!(dx(256, 64, 32), (2, 32));
        assert_eq!(dx(256, 32, 64), (1, 32));
        assert_eq!(dx(256, 64, 128), (2, 32));
        // Enough tiles: never split (65,536 rows; the 8192³ benchmark).
        assert_eq!(fwd(65_536, 32, 64).0, 1);
        assert_eq!(dx(65_536, 784, 32).0, 1);
        assert_eq!(fwd(8192, 8192, 8192).0, 1);
        // 131 tiles still split, 132 do not.
        assert!(fwd(131 * 64, 64, 784).0 > 1);
        assert_eq!(fwd(132 * 64, 64, 784).0, 1);
        for m in [1, 63, 65, 96, 257, 4096] {
            for (n, k) in [(1, 1), (33, 31), (128, 784), (784, 128), (5, 1000)] {
                for p in [
                    SplitPlan::for_forward(m, n, k, 132),
                    SplitPlan::for_input_grad(m, k, n, 132),
                ] {
                    // k is the reduction of both (for_input_grad's n = k here)
                    assert!(p.splits * p.rows_per_split >= k);
                    assert!((p.splits - 1) * p.rows_per_split < k);
                    assert!(p.splits <= k.div_ceil(32).max(1));
                    if p.splits > 1 {
                        assert_eq!(p.rows_per_split % 32, 0);
                    }
                }
            }
        }
    }
}
