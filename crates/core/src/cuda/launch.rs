//! Launchers: one function per kernel, computing the grid exactly as
//! kernels/README.md specifies. Arguments are raw device addresses (u64) so
//! the same calls work eagerly and inside CUDA-graph capture; every launch's
//! result is checked.

use super::compile::{compile, kernel_sources};
use super::Precision;
use crate::Activation;
use anyhow::{anyhow, bail, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use std::sync::Arc;

/// Blocks of `bce_logits` (fixed, so the partial-sum buffer has a fixed size).
pub const LOSS_BLOCKS: usize = 1024;
const TILE: usize = 64;

fn cdiv(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Every kernel of kernels/, loaded into one context.
pub struct Kernels {
    gemm_fwd: [CudaFunction; 3],
    gemm_dx: [CudaFunction; 3],
    gemm_dw: [CudaFunction; 3],
    gemm_fwd_partial: [CudaFunction; 3],
    gemm_dx_partial: [CudaFunction; 3],
    reduce_splits: CudaFunction,
    splitk_bias_act: CudaFunction,
    splitk_mask: CudaFunction,
    bias_grad: CudaFunction,
    bce_logits: CudaFunction,
    loss_accumulate: CudaFunction,
    adam_step: CudaFunction,
    step_increment: CudaFunction,
    gather_u8: CudaFunction,
    gather_f32: CudaFunction,
    gather_u8_dev: CudaFunction,
    gather_f32_dev: CudaFunction,
    offset_advance: CudaFunction,
    sm_count: usize,
}

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

fn checked(r: Result<impl Sized, cudarc::driver::DriverError>, what: &str) -> Result<()> {
    r.map(|_| ())
        .map_err(|e| anyhow!("launch of {what} failed: {e}"))
}

fn cfg(grid: (usize, usize, usize), block: (usize, usize, usize)) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid.0 as u32, grid.1 as u32, grid.2 as u32),
        block_dim: (block.0 as u32, block.1 as u32, block.2 as u32),
        shared_mem_bytes: 0,
    }
}

fn i(v: usize) -> i32 {
    i32::try_from(v).expect("size exceeds the kernels' int range")
}

impl Kernels {
    pub fn load(ctx: &Arc<CudaContext>, cc: (i32, i32), sm_count: u32) -> Result<Self> {
        let mut modules = Vec::new();
        for (file, src) in kernel_sources() {
            let ptx = compile(file, src, cc)?;
            let module = ctx
                .load_module(ptx)
                .map_err(|e| anyhow!("the driver refused the PTX of kernels/{file}: {e} (an NVRTC newer than the driver makes PTX the driver cannot load)"))?;
            modules.push(module);
        }
        let f = |name: &str| -> Result<CudaFunction> {
            for m in &modules {
                if let Ok(func) = m.load_function(name) {
                    return Ok(func);
                }
            }
            Err(anyhow!("kernel {name} not found in kernels/"))
        };
        let by_precision = |stem: &str| -> Result<[CudaFunction; 3]> {
            Ok([
                f(&format!("{stem}_{}", Precision::Fp32.suffix()))?,
                f(&format!("{stem}_{}", Precision::Tf32.suffix()))?,
                f(&format!("{stem}_{}", Precision::Bf16.suffix()))?,
            ])
        };
        Ok(Kernels {
            gemm_fwd: by_precision("gemm_fwd")?,
            gemm_dx: by_precision("gemm_dx")?,
            gemm_dw: by_precision("gemm_dw")?,
            gemm_fwd_partial: by_precision("gemm_fwd_partial")?,
            gemm_dx_partial: by_precision("gemm_dx_partial")?,
            reduce_splits: f("reduce_splits")?,
            splitk_bias_act: f("splitk_bias_act")?,
            splitk_mask: f("splitk_mask")?,
            bias_grad: f("bias_grad")?,
            bce_logits: f("bce_logits")?,
            loss_accumulate: f("loss_accumulate")?,
            adam_step: f("adam_step")?,
            step_increment: f("step_increment")?,
            gather_u8: f("gather_u8")?,
            gather_f32: f("gather_f32")?,
            gather_u8_dev: f("gather_u8_dev")?,
            gather_f32_dev: f("gather_f32_dev")?,
            offset_advance: f("offset_advance")?,
            sm_count: sm_count as usize,
        })
    }

    pub fn sm_count(&self) -> usize {
        self.sm_count
    }

    fn gemm_block(p: Precision) -> (usize, usize, usize) {
        match p {
            Precision::Fp32 => (256, 1, 1),
            _ => (128, 1, 1),
        }
    }

    fn idx(p: Precision) -> usize {
        p as usize
    }

    /// Grid of the grid-stride split-K finishes (reduce_splits,
    /// splitk_bias_act, splitk_mask): a float4 per thread, at most 4 blocks
    /// per SM.
    fn elementwise_grid(&self, count: usize) -> usize {
        cdiv(count, 1024).clamp(1, 4 * self.sm_count)
    }

    /// Y[m,n] = act(X[m,k]·W[k,n] + b); `b` may be 0 (no bias). When the
    /// output tiles would not fill the GPU (`SplitPlan::for_forward`), the
    /// product is split over k into `work` (at least splits·m·n floats; may be
    /// 0 when the plan has one split) and finished by `splitk_bias_act`.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_fwd(
        &self,
        s: &CudaStream,
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
    ) -> Result<()> {
        let plan = SplitPlan::for_forward(m, n, k, self.sm_count);
        let (mi, ni, ki, a) = (i(m), i(n), i(k), act as i32);
        let grid = (cdiv(n, TILE), cdiv(m, TILE), plan.splits);
        if plan.splits == 1 {
            let mut l = s.launch_builder(&self.gemm_fwd[Self::idx(p)]);
            l.arg(&x)
                .arg(&w)
                .arg(&b)
                .arg(&y)
                .arg(&mi)
                .arg(&ni)
                .arg(&ki)
                .arg(&a);
            // SAFETY: argument list matches the kernel's signature; pointers are
            // device allocations sized by the caller for these shapes.
            return checked(
                unsafe { l.launch(cfg(grid, Self::gemm_block(p))) },
                "gemm_fwd",
            );
        }
        if work == 0 {
            bail!(
                "gemm_fwd {m}×{n}×{k} splits over k ({} splits) but got no work buffer",
                plan.splits
            );
        }
        let (si, per) = (i(plan.splits), i(plan.rows_per_split));
        let mut l = s.launch_builder(&self.gemm_fwd_partial[Self::idx(p)]);
        l.arg(&x)
            .arg(&w)
            .arg(&work)
            .arg(&mi)
            .arg(&ni)
            .arg(&ki)
            .arg(&per);
        // SAFETY: as above; `work` holds splits·m·n floats.
        checked(
            unsafe { l.launch(cfg(grid, Self::gemm_block(p))) },
            "gemm_fwd_partial",
        )?;
        let mut l = s.launch_builder(&self.splitk_bias_act);
        l.arg(&work)
            .arg(&b)
            .arg(&y)
            .arg(&si)
            .arg(&mi)
            .arg(&ni)
            .arg(&a);
        // SAFETY: work holds splits·m·n floats, y m·n, b n (or 0); any grid.
        checked(
            unsafe { l.launch(cfg((self.elementwise_grid(m * n), 1, 1), (256, 1, 1))) },
            "splitk_bias_act",
        )
    }

    /// dX[m,k] = dY[m,n]·Wᵀ, zeroed where mask[m,k] ≤ 0 (`mask` may be 0).
    /// Split over n into `work` (splits·m·k floats) when the output tiles
    /// would not fill the GPU (`SplitPlan::for_input_grad`), then finished by
    /// `splitk_mask`.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_dx(
        &self,
        s: &CudaStream,
        p: Precision,
        dy: u64,
        w: u64,
        mask: u64,
        dx: u64,
        work: u64,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        let plan = SplitPlan::for_input_grad(m, n, k, self.sm_count);
        let (mi, ni, ki) = (i(m), i(n), i(k));
        let grid = (cdiv(k, TILE), cdiv(m, TILE), plan.splits);
        if plan.splits == 1 {
            let mut l = s.launch_builder(&self.gemm_dx[Self::idx(p)]);
            l.arg(&dy)
                .arg(&w)
                .arg(&mask)
                .arg(&dx)
                .arg(&mi)
                .arg(&ni)
                .arg(&ki);
            // SAFETY: as in gemm_fwd.
            return checked(
                unsafe { l.launch(cfg(grid, Self::gemm_block(p))) },
                "gemm_dx",
            );
        }
        if work == 0 {
            bail!(
                "gemm_dx {m}×{n}×{k} splits over n ({} splits) but got no work buffer",
                plan.splits
            );
        }
        let (si, per, ci) = (i(plan.splits), i(plan.rows_per_split), i(m * k));
        let mut l = s.launch_builder(&self.gemm_dx_partial[Self::idx(p)]);
        l.arg(&dy)
            .arg(&w)
            .arg(&work)
            .arg(&mi)
            .arg(&ni)
            .arg(&ki)
            .arg(&per);
        // SAFETY: as in gemm_fwd; `work` holds splits·m·k floats.
        checked(
            unsafe { l.launch(cfg(grid, Self::gemm_block(p))) },
            "gemm_dx_partial",
        )?;
        let mut l = s.launch_builder(&self.splitk_mask);
        l.arg(&work).arg(&mask).arg(&dx).arg(&si).arg(&ci);
        // SAFETY: work holds splits·m·k floats, dx and mask (or 0) m·k; any grid.
        checked(
            unsafe { l.launch(cfg((self.elementwise_grid(m * k), 1, 1), (256, 1, 1))) },
            "splitk_mask",
        )
    }

    /// dW[k,n] = X[m,k]ᵀ·dY[m,n], split over the rows into `work` (at least
    /// splits·k·n floats when splits > 1) and reduced in split order.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_dw(
        &self,
        s: &CudaStream,
        p: Precision,
        x: u64,
        dy: u64,
        dw: u64,
        work: u64,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<()> {
        let plan = SplitPlan::for_weight_grad(m, k, n, self.sm_count);
        let target = if plan.splits == 1 { dw } else { work };
        let f = &self.gemm_dw[Self::idx(p)];
        let (mi, ni, ki, r) = (i(m), i(n), i(k), i(plan.rows_per_split));
        let mut l = s.launch_builder(f);
        l.arg(&x)
            .arg(&dy)
            .arg(&target)
            .arg(&mi)
            .arg(&ni)
            .arg(&ki)
            .arg(&r);
        // SAFETY: as in gemm_fwd; `target` holds splits·k·n floats.
        checked(
            unsafe {
                l.launch(cfg(
                    (cdiv(n, TILE), cdiv(k, TILE), plan.splits),
                    Self::gemm_block(p),
                ))
            },
            "gemm_dw",
        )?;
        if plan.splits > 1 {
            self.reduce_splits(s, work, dw, plan.splits, k * n)?;
        }
        Ok(())
    }

    /// db[n] = column sums of dY[m,n], deterministic (split, then reduced).
    pub fn bias_grad(
        &self,
        s: &CudaStream,
        dy: u64,
        db: u64,
        work: u64,
        m: usize,
        n: usize,
    ) -> Result<()> {
        let plan = SplitPlan::for_bias_grad(m, n, self.sm_count);
        let target = if plan.splits == 1 { db } else { work };
        let (mi, ni, r) = (i(m), i(n), i(plan.rows_per_split));
        let mut l = s.launch_builder(&self.bias_grad);
        l.arg(&dy).arg(&target).arg(&mi).arg(&ni).arg(&r);
        // SAFETY: block must be exactly (32,8,1) (kernels/README.md).
        checked(
            unsafe { l.launch(cfg((cdiv(n, 32), plan.splits, 1), (32, 8, 1))) },
            "bias_grad",
        )?;
        if plan.splits > 1 {
            self.reduce_splits(s, work, db, plan.splits, n)?;
        }
        Ok(())
    }

    pub fn reduce_splits(
        &self,
        s: &CudaStream,
        partial: u64,
        out: u64,
        splits: usize,
        count: usize,
    ) -> Result<()> {
        let (si, ci) = (i(splits), i(count));
        let mut l = s.launch_builder(&self.reduce_splits);
        l.arg(&partial).arg(&out).arg(&si).arg(&ci);
        let grid = self.elementwise_grid(count);
        // SAFETY: partial holds splits·count floats, out count floats.
        checked(
            unsafe { l.launch(cfg((grid, 1, 1), (256, 1, 1))) },
            "reduce_splits",
        )
    }

    /// dZ = (sigmoid(Z) − T)·scale and per-block loss sums into `partial`
    /// (LOSS_BLOCKS floats); then accum[0] += weight·Σ partial (f64).
    #[allow(clippy::too_many_arguments)]
    pub fn bce_logits(
        &self,
        s: &CudaStream,
        z: u64,
        t: u64,
        dz: u64,
        partial: u64,
        accum: u64,
        count: usize,
        grad_scale: f32,
        weight: f64,
    ) -> Result<()> {
        let ci = i(count);
        let mut l = s.launch_builder(&self.bce_logits);
        l.arg(&z)
            .arg(&t)
            .arg(&dz)
            .arg(&partial)
            .arg(&ci)
            .arg(&grad_scale);
        // SAFETY: grid and block fixed by the kernel's contract.
        checked(
            unsafe { l.launch(cfg((LOSS_BLOCKS, 1, 1), (256, 1, 1))) },
            "bce_logits",
        )?;
        let blocks = LOSS_BLOCKS as i32;
        let mut l = s.launch_builder(&self.loss_accumulate);
        l.arg(&partial).arg(&blocks).arg(&accum).arg(&weight);
        // SAFETY: one block of 256 threads, as the kernel requires.
        checked(
            unsafe { l.launch(cfg((1, 1, 1), (256, 1, 1))) },
            "loss_accumulate",
        )
    }

    /// One Adam step over n parameters at the device-held step `step` (which
    /// `step_increment` advanced first).
    #[allow(clippy::too_many_arguments)]
    pub fn adam(
        &self,
        s: &CudaStream,
        params: u64,
        grads: u64,
        m: u64,
        v: u64,
        n: usize,
        step: u64,
        cfg_adam: &crate::AdamConfig,
    ) -> Result<()> {
        let ni = i(n);
        let mut l = s.launch_builder(&self.adam_step);
        l.arg(&params)
            .arg(&grads)
            .arg(&m)
            .arg(&v)
            .arg(&ni)
            .arg(&step);
        l.arg(&cfg_adam.lr)
            .arg(&cfg_adam.beta1)
            .arg(&cfg_adam.beta2)
            .arg(&cfg_adam.eps);
        let grid = cdiv(n, 1024).clamp(1, 4 * self.sm_count);
        // SAFETY: four buffers of n floats and one int.
        checked(
            unsafe { l.launch(cfg((grid, 1, 1), (256, 1, 1))) },
            "adam_step",
        )
    }

    pub fn step_increment(&self, s: &CudaStream, step: u64) -> Result<()> {
        let mut l = s.launch_builder(&self.step_increment);
        l.arg(&step);
        // SAFETY: one int.
        checked(
            unsafe { l.launch(cfg((1, 1, 1), (1, 1, 1))) },
            "step_increment",
        )
    }

    /// out[r] = data[perm[offset + r]] scaled to [0,1]; `offset` is either a
    /// value or, with `offset_on_device`, the address of a device int.
    #[allow(clippy::too_many_arguments)]
    pub fn gather(
        &self,
        s: &CudaStream,
        u8_data: bool,
        data: u64,
        perm: u64,
        offset: Offset,
        rows: usize,
        dim: usize,
        out: u64,
    ) -> Result<()> {
        let (ri, di) = (i(rows), i(dim));
        let grid = (rows.clamp(1, 65_535), 1, 1);
        match offset {
            Offset::Value(o) => {
                let f = if u8_data {
                    &self.gather_u8
                } else {
                    &self.gather_f32
                };
                let oi = i(o);
                let mut l = s.launch_builder(f);
                l.arg(&data).arg(&perm).arg(&oi).arg(&ri).arg(&di).arg(&out);
                // SAFETY: perm holds offset+rows indices, each < the data's rows.
                checked(unsafe { l.launch(cfg(grid, (256, 1, 1))) }, "gather")
            }
            Offset::Device(ptr) => {
                let f = if u8_data {
                    &self.gather_u8_dev
                } else {
                    &self.gather_f32_dev
                };
                let mut l = s.launch_builder(f);
                l.arg(&data)
                    .arg(&perm)
                    .arg(&ptr)
                    .arg(&ri)
                    .arg(&di)
                    .arg(&out);
                // SAFETY: as above, offset read from device memory.
                checked(unsafe { l.launch(cfg(grid, (256, 1, 1))) }, "gather_dev")
            }
        }
    }

    pub fn offset_advance(&self, s: &CudaStream, offset: u64, rows: usize) -> Result<()> {
        let ri = i(rows);
        let mut l = s.launch_builder(&self.offset_advance);
        l.arg(&offset).arg(&ri);
        // SAFETY: one int.
        checked(
            unsafe { l.launch(cfg((1, 1, 1), (1, 1, 1))) },
            "offset_advance",
        )
    }
}

/// Where a gather's starting row comes from.
#[derive(Clone, Copy, Debug)]
pub enum Offset {
    Value(usize),
    Device(u64),
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
