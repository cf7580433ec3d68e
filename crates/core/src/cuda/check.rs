//! The kernel regression suite: every kernel against the float64 reference
//! on fresh random inputs over a table of shapes, every precision with its
//! stated tolerance, outputs poisoned with NaN before each launch (an
//! unwritten element fails), each case run twice for bit-equality.
//! `dae check` and the GPU tests run these.

use super::ops::Op;
use super::{Buffer, KernelDevice, Offset, Precision, SplitPlan};
use crate::reference::{self, relative_error};
use crate::rng::{Purpose, Rng};
use crate::{Activation, AdamConfig};
use anyhow::Result;

/// One checked case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub kernel: String,
    pub precision: &'static str,
    /// "M×N×K" for products, the element count otherwise.
    pub shape: String,
    /// ‖gpu − ref‖/‖ref‖ (infinite when any output is NaN or inf).
    pub rel_error: f64,
    pub tolerance: f64,
    /// Two runs gave identical bits.
    pub deterministic: bool,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.rel_error <= self.tolerance && self.deterministic
    }
}

/// Tolerance of a product reducing over `len` terms:
/// - fp32: rounding of an fp32 accumulation, ≈ 4·2⁻²⁴·√len, at least 1e-5;
/// - tf32: operands rounded to 10 mantissa bits (2⁻¹¹ each): 3e-3;
/// - bf16: operands rounded to 7 mantissa bits (2⁻⁸ each): 2.5e-2.
pub fn tolerance(p: Precision, len: usize) -> f64 {
    match p {
        Precision::Fp32 => (4.0 * f64::powi(2.0, -24) * (len as f64).sqrt()).max(1e-5),
        Precision::Tf32 => 3e-3,
        Precision::Bf16 => 2.5e-2,
    }
}

/// Elementwise kernels (loss, Adam, column sums) are fp32 throughout.
const ELEMENTWISE_TOL: f64 = 1e-5;

/// (M, N, K): the lab model's products at batch 256, the degenerate 1×1×1,
/// odd primes, and the large batch.
///
/// Both gemm_fwd / gemm_dx paths are covered (splits at 132 SMs, from
/// `SplitPlan::for_forward` / `for_input_grad`; other SM counts move a few
/// but the test `shapes_cover_both_gemm_paths` holds from 16 to 160 SMs):
/// every M ≤ 257 shape has fewer output tiles than SMs and splits wherever
/// its reduction spans more than one 32-wide k-tile (fwd: K > 32, dx:
/// N > 32), ragged last splits included (K = 67, 63; N = 131, 33, 34); the
/// fused unsplit kernels run where that reduction is ≤ 32 (fwd of
/// 256×64×32, 1×1×1, 31×33×1, 16×34×5; dx of 256×32×64, 1×1×1, 65×1×63) and
/// for the 65,536-row shapes (≥ 2,048 tiles: never split). At 132 SMs the
/// M = 256 shapes split into single k-tiles; 640×128×784 keeps two per split,
/// so the double-buffered main loop's second stage runs in `--quick` too.
pub fn shapes(large: bool) -> Vec<(usize, usize, usize)> {
    let mut v = vec![
        (256, 128, 784), // fwd 25 splits, dx 4
        (256, 64, 128),  // fwd 4, dx 2
        (256, 32, 64),   // fwd 2, dx fused
        (256, 64, 32),   // fwd fused, dx 2
        (256, 128, 64),  // fwd 2, dx 4
        (256, 784, 128), // fwd 4, dx 25
        (96, 784, 128),  // the lab's last partial batch: fwd 4, dx 25
        (640, 128, 784), // fwd 13, dx 2, dW 10 splits of two 32-wide k-tiles each
        (1, 1, 1),       // fused
        (257, 131, 67),  // fwd 3 (32+32+3), dx 5 (…+3)
        (31, 33, 1),     // fwd fused, dx 2 (32+1)
        (65, 1, 63),     // fwd 2 (32+31), dx fused
        (16, 34, 5),     // one dW split: dW written directly, even N; fwd fused, dx 2
    ];
    if large {
        v.push((65_536, 128, 784));
        v.push((65_536, 784, 128));
    }
    v
}

struct Checker<'a, D: KernelDevice> {
    dev: &'a D,
    rng: Rng,
    results: Vec<CaseResult>,
}

impl<D: KernelDevice> Checker<'_, D> {
    fn random(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| self.rng.uniform_in(-scale, scale))
            .collect()
    }

    fn upload(&self, v: &[f32]) -> Result<Buffer<D, f32>> {
        Buffer::from_host(self.dev, v)
    }

    fn zeros<T: bytemuck::Pod>(&self, len: usize) -> Result<Buffer<D, T>> {
        Buffer::zeros(self.dev, len)
    }

    /// Runs `launch` twice into `out` (poisoned with NaN before each run);
    /// returns the first result and whether both runs agree bit for bit.
    fn twice(
        &self,
        out: &mut Buffer<D, f32>,
        len: usize,
        launch: impl FnMut(u64) -> Result<()>,
    ) -> Result<(Vec<f32>, bool)> {
        self.twice_at(out, 0, len, launch)
    }

    /// As `twice`, with the output starting at element `skip` of `out`
    /// (skip = 1: only 4-byte aligned, like a layer's slice of the flat
    /// gradient buffer).
    fn twice_at(
        &self,
        out: &mut Buffer<D, f32>,
        skip: usize,
        len: usize,
        mut launch: impl FnMut(u64) -> Result<()>,
    ) -> Result<(Vec<f32>, bool)> {
        let poison = vec![f32::NAN; skip + len];
        let mut runs = Vec::new();
        for _ in 0..2 {
            out.upload(self.dev, &poison)?;
            launch(out.at(skip))?;
            runs.push(out.download(self.dev, skip + len)?.split_off(skip));
        }
        let same = runs[0]
            .iter()
            .zip(&runs[1])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        Ok((runs.swap_remove(0), same))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        kernel: &str,
        p: Precision,
        shape: String,
        got: &[f32],
        want: &[f64],
        tol: f64,
        same: bool,
    ) {
        self.results.push(CaseResult {
            kernel: kernel.to_string(),
            precision: p.name(),
            shape,
            rel_error: relative_error(got, want),
            tolerance: tol,
            deterministic: same,
        });
    }

    fn products(&mut self, (m, n, k): (usize, usize, usize)) -> Result<()> {
        let dev = self.dev;
        let x = self.random(m * k, 1.0);
        let w = self.random(k * n, 0.5);
        let b = self.random(n, 0.5);
        let dy = self.random(m * n, 1.0);
        let mask = self.random(m * k, 1.0);
        let (xd, wd, bd, dyd, maskd) = (
            self.upload(&x)?,
            self.upload(&w)?,
            self.upload(&b)?,
            self.upload(&dy)?,
            self.upload(&mask)?,
        );
        // One scratch buffer for every split path (they run one at a time).
        let sm = dev.sm_count();
        let (fwd_plan, dx_plan) = (
            SplitPlan::for_forward(m, n, k, sm),
            SplitPlan::for_input_grad(m, n, k, sm),
        );
        let work_len = [
            SplitPlan::for_weight_grad(m, k, n, sm).partial_len(k * n),
            SplitPlan::for_bias_grad(m, n, sm).partial_len(n),
            fwd_plan.partial_len(m * n),
            dx_plan.partial_len(m * k),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let work = self.zeros::<f32>(work_len)?;
        let path = |plan: SplitPlan| match plan.splits {
            1 => "fused".to_string(),
            n => format!("split-K×{n}"),
        };
        let (fwd_path, dx_path) = (path(fwd_plan), path(dx_plan));
        let dw_path = path(SplitPlan::for_weight_grad(m, k, n, sm));
        let shape = format!("{m}×{n}×{k}");
        // The large products check one case each (their float64 references
        // dominate the run time); they never split.
        let small = m * n * k <= 1 << 26;
        let acts = if !small {
            vec![Activation::Relu]
        } else {
            vec![Activation::Identity, Activation::Relu, Activation::Sigmoid]
        };
        let fwd_refs: Vec<Vec<f64>> = acts
            .iter()
            .map(|&a| reference::dense_forward(&x, &w, Some(&b), m, k, n, a))
            .collect();
        let dx_ref = reference::dense_backward_input(&dy, &w, Some(&mask), m, n, k);
        let (fwd_nobias_ref, dx_nomask_ref) = if small {
            (
                reference::dense_forward(&x, &w, None, m, k, n, Activation::Relu),
                reference::dense_backward_input(&dy, &w, None, m, n, k),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let dw_ref = reference::dense_backward_weight(&x, &dy, m, k, n);
        let mut y = self.zeros::<f32>(m * n + 1)?;
        let mut dx = self.zeros::<f32>(m * k + 1)?;
        let mut dw = self.zeros::<f32>(k * n + 1)?;
        let fwd = |p, b, y, act| Op::GemmFwd {
            p,
            x: xd.ptr(),
            w: wd.ptr(),
            b,
            y,
            work: work.ptr(),
            m,
            n,
            k,
            act,
        };
        let dxop = |p, mask, dx| Op::GemmDx {
            p,
            dy: dyd.ptr(),
            w: wd.ptr(),
            mask,
            dx,
            work: work.ptr(),
            m,
            n,
            k,
        };
        let dwop = |p, dw| Op::GemmDw {
            p,
            x: xd.ptr(),
            dy: dyd.ptr(),
            dw,
            work: work.ptr(),
            m,
            n,
            k,
        };
        for p in Precision::ALL {
            for (act, want) in acts.iter().zip(&fwd_refs) {
                let (got, same) =
                    self.twice(&mut y, m * n, |out| dev.run(&fwd(p, bd.ptr(), out, *act)))?;
                self.record(
                    &format!("gemm_fwd {} {fwd_path}", act.name()),
                    p,
                    shape.clone(),
                    &got,
                    want,
                    tolerance(p, k),
                    same,
                );
            }
            let (got, same) =
                self.twice(&mut dx, m * k, |out| dev.run(&dxop(p, maskd.ptr(), out)))?;
            self.record(
                &format!("gemm_dx relu-mask {dx_path}"),
                p,
                shape.clone(),
                &got,
                &dx_ref,
                tolerance(p, n),
                same,
            );
            // No bias, into a 4-byte aligned output (the finish's scalar path).
            if small {
                let (got, same) = self.twice_at(&mut y, 1, m * n, |out| {
                    dev.run(&fwd(p, 0, out, Activation::Relu))
                })?;
                self.record(
                    &format!("gemm_fwd no-bias unaligned out {fwd_path}"),
                    p,
                    shape.clone(),
                    &got,
                    &fwd_nobias_ref,
                    tolerance(p, k),
                    same,
                );
                // No mask, into a 4-byte aligned output.
                let (got, same) =
                    self.twice_at(&mut dx, 1, m * k, |out| dev.run(&dxop(p, 0, out)))?;
                self.record(
                    &format!("gemm_dx no-mask unaligned out {dx_path}"),
                    p,
                    shape.clone(),
                    &got,
                    &dx_nomask_ref,
                    tolerance(p, n),
                    same,
                );
            }
            let (got, same) = self.twice(&mut dw, k * n, |out| dev.run(&dwop(p, out)))?;
            self.record(
                &format!("gemm_dw {dw_path}"),
                p,
                shape.clone(),
                &got,
                &dw_ref,
                tolerance(p, m),
                same,
            );
            // Into a 4-byte aligned slice, as into the flat gradient buffer.
            let (got, same) = self.twice_at(&mut dw, 1, k * n, |out| dev.run(&dwop(p, out)))?;
            self.record(
                &format!("gemm_dw unaligned out {dw_path}"),
                p,
                shape.clone(),
                &got,
                &dw_ref,
                tolerance(p, m),
                same,
            );
        }
        let mut db = self.zeros::<f32>(n + 1)?;
        let want = reference::column_sums(&dy, m, n);
        for (name, skip) in [("bias_grad", 0), ("bias_grad unaligned out", 1)] {
            let (got, same) = self.twice_at(&mut db, skip, n, |out| {
                dev.run(&Op::BiasGrad {
                    dy: dyd.ptr(),
                    db: out,
                    work: work.ptr(),
                    m,
                    n,
                })
            })?;
            self.record(
                name,
                Precision::Fp32,
                format!("{m}×{n}"),
                &got,
                &want,
                tolerance(Precision::Fp32, m),
                same,
            );
        }
        Ok(())
    }

    fn loss(&mut self, count: usize) -> Result<()> {
        let z: Vec<f32> = self.random(count, 8.0);
        let t: Vec<f32> = self.random(count, 1.0).iter().map(|v| v.abs()).collect();
        let (zd, td) = (self.upload(&z)?, self.upload(&t)?);
        let partial = self.zeros::<f32>(super::LOSS_BLOCKS)?;
        let mut sum = self.zeros::<f64>(1)?;
        let scale = 1.0 / count as f32;
        let (want_loss, want_grad) = reference::bce_logits(&z, &t, scale as f64);
        let mut dz = self.zeros::<f32>(count)?;
        let mut sums = Vec::new();
        let sum_ref = &mut sum;
        let dev = self.dev;
        let (got, same) = self.twice(&mut dz, count, |out| {
            sum_ref.upload(dev, &[0.0])?;
            dev.run(&Op::Bce {
                z: zd.ptr(),
                t: td.ptr(),
                dz: out,
                partial: partial.ptr(),
                accum: sum_ref.ptr(),
                count,
                grad_scale: scale,
                weight: 1.0,
            })
        })?;
        sums.push(sum.download(dev, 1)?[0]);
        self.record(
            "bce_logits grad",
            Precision::Fp32,
            count.to_string(),
            &got,
            &want_grad,
            ELEMENTWISE_TOL,
            same,
        );
        let loss = sums[0] as f32;
        self.record(
            "bce_logits loss",
            Precision::Fp32,
            count.to_string(),
            &[loss],
            &[want_loss],
            ELEMENTWISE_TOL,
            true,
        );
        Ok(())
    }

    fn adam(&mut self, n: usize, t: u64) -> Result<()> {
        let cfg = AdamConfig::default();
        let dev = self.dev;
        let p0 = self.random(n, 1.0);
        let g = self.random(n, 1e-2);
        let m0 = self.random(n, 1e-3);
        let v0: Vec<f32> = self.random(n, 1e-2).iter().map(|v| v * v).collect();
        let (rp, rm, rv) = reference::adam(&p0, &g, &m0, &v0, t, &cfg);
        let gd = self.upload(&g)?;
        let (mut pd, mut md, mut vd) = (self.upload(&p0)?, self.upload(&m0)?, self.upload(&v0)?);
        let step = Buffer::<D, i32>::from_host(dev, &[t as i32 - 1])?;
        dev.run(&Op::StepIncrement { step: step.ptr() })?;
        // One step from the same inputs, twice: the second run checks the bits.
        let mut run = || -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
            pd.upload(dev, &p0)?;
            md.upload(dev, &m0)?;
            vd.upload(dev, &v0)?;
            dev.run(&Op::Adam {
                params: pd.ptr(),
                grads: gd.ptr(),
                m: md.ptr(),
                v: vd.ptr(),
                n,
                step: step.ptr(),
                cfg,
            })?;
            Ok((
                pd.download(dev, n)?,
                md.download(dev, n)?,
                vd.download(dev, n)?,
            ))
        };
        let (p, m, v) = run()?;
        let same = run()?
            .0
            .iter()
            .zip(&p)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        // Compare the update, not the parameters that dwarf it.
        let du: Vec<f32> = p.iter().zip(&p0).map(|(a, b)| a - b).collect();
        let rdu: Vec<f64> = rp.iter().zip(&p0).map(|(a, &b)| a - b as f64).collect();
        let shape = format!("{n} @ t={t}");
        self.record(
            "adam update",
            Precision::Fp32,
            shape.clone(),
            &du,
            &rdu,
            1e-3,
            same,
        );
        self.record(
            "adam m",
            Precision::Fp32,
            shape.clone(),
            &m,
            &rm,
            ELEMENTWISE_TOL,
            same,
        );
        self.record(
            "adam v",
            Precision::Fp32,
            shape,
            &v,
            &rv,
            ELEMENTWISE_TOL,
            same,
        );
        Ok(())
    }

    fn gather(&mut self, rows: usize, dim: usize) -> Result<()> {
        let dev = self.dev;
        let data: Vec<u8> = (0..rows * dim).map(|_| self.rng.below(256) as u8).collect();
        let mut perm: Vec<u32> = (0..rows as u32).collect();
        self.rng.shuffle(&mut perm);
        let take = rows / 2 + 1;
        let offset = rows - take;
        let dd = Buffer::<D, u8>::from_host(dev, &data)?;
        let pd = Buffer::<D, u32>::from_host(dev, &perm)?;
        let od = Buffer::<D, i32>::from_host(dev, &[offset as i32])?;
        let want: Vec<f64> = perm[offset..]
            .iter()
            .flat_map(|&r| {
                data[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .map(|&v| (v as f32 / 255.0) as f64)
            })
            .collect();
        let mut out = self.zeros::<f32>(take * dim)?;
        for (name, off) in [
            ("gather_u8", Offset::Value(offset)),
            ("gather_u8_dev", Offset::Device(od.ptr())),
        ] {
            let (got, same) = self.twice(&mut out, take * dim, |o| {
                dev.run(&Op::Gather {
                    u8_data: true,
                    data: dd.ptr(),
                    index: pd.ptr(),
                    offset: off,
                    rows: take,
                    dim,
                    out: o,
                })
            })?;
            // Exact: the same division as the CPU.
            self.record(
                name,
                Precision::Fp32,
                format!("{take}×{dim}"),
                &got,
                &want,
                0.0,
                same,
            );
        }
        Ok(())
    }
}

/// Runs every kernel case; `large` adds the 65,536-row products.
pub fn kernel_cases<D: KernelDevice>(dev: &D, large: bool) -> Result<Vec<CaseResult>> {
    let mut c = Checker {
        dev,
        rng: Rng::new(std::process::id() as u64 ^ 0x5eed, Purpose::Test, 77),
        results: Vec::new(),
    };
    for shape in shapes(large) {
        c.products(shape)?;
    }
    for count in [1, 1000, 256 * 784 + 3, 1 << 20] {
        c.loss(count)?;
    }
    for (n, t) in [(1, 1), (1000, 3), (222_384, 1000)] {
        c.adam(n, t)?;
    }
    for (rows, dim) in [(1, 1), (300, 784), (1001, 13)] {
        c.gather(rows, dim)?;
    }
    Ok(c.results)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape table runs both the split-K and the fused fwd / dx kernels
    /// (the 65,536-row shapes never split).
    #[test]
    fn shapes_cover_both_gemm_paths() {
        for sm in [16, 108, 114, 132, 160] {
            let splits = |(m, n, k): (usize, usize, usize)| {
                (
                    SplitPlan::for_forward(m, n, k, sm).splits,
                    SplitPlan::for_input_grad(m, n, k, sm).splits,
                )
            };
            let small: Vec<_> = shapes(false).into_iter().map(splits).collect();
            assert!(small.iter().any(|s| s.0 > 1) && small.iter().any(|s| s.0 == 1));
            assert!(small.iter().any(|s| s.1 > 1) && small.iter().any(|s| s.1 == 1));
            for shape in shapes(true).into_iter().filter(|s| s.0 == 65_536) {
                assert_eq!(splits(shape), (1, 1), "{shape:?} at {sm} SMs");
            }
        }
        assert_eq!(splits_at_132((256, 128, 784)), (25, 4));
        assert_eq!(splits_at_132((257, 131, 67)), (3, 5));
        // Two 32-wide k-tiles per split somewhere in the small table at 132 SMs.
        let (m, n, k) = (640, 128, 784);
        assert!(shapes(false).contains(&(m, n, k)));
        for p in [
            SplitPlan::for_forward(m, n, k, 132),
            SplitPlan::for_input_grad(m, n, k, 132),
            SplitPlan::for_weight_grad(m, k, n, 132),
        ] {
            assert!(p.splits > 1 && p.rows_per_split >= 64, "{p:?}");
        }
    }

    fn splits_at_132((m, n, k): (usize, usize, usize)) -> (usize, usize) {
        (
            SplitPlan::for_forward(m, n, k, 132).splits,
            SplitPlan::for_input_grad(m, n, k, 132).splits,
        )
    }
}
