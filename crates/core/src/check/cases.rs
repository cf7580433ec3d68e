//! The kernel cases, group by group: the products of one shape (forward in
//! each activation, input gradient, weight gradient, bias gradient, aligned
//! and not), the fused loss, Adam, LAMB, gradient accumulation and the
//! batch gathers. A group draws its
//! inputs from streams named after itself, lazily, so selecting one case
//! computes only that case's inputs and reference.

use super::bound::{Bound, U32};
use super::golden::is_golden;
use super::{CaseKey, CaseResult, Goldens, Options, Selection, SuiteRun, Timing};
use crate::ops::lamb::{LambBuffers, LambStep, LambTable, LambTensor};
use crate::ops::{
    AccumulateAdd, AdamStep, Bce, BiasGrad, Forward, Gather, InputGrad, Offset, Op, SplitPlan,
    StepIncrement, WeightGrad, LOSS_BLOCKS,
};
use crate::rng::{Purpose, Rng};
use crate::{reference, reference_lamb, Error};
use crate::{Activation, AdamConfig, Buffer, GemmShape, KernelDevice, Precision, Result};
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::Instant;

/// Median device time of one launch of `op` (`BENCH_LAUNCHES` back to
/// back in one recorded graph, the median of its replays), with its FLOPs
/// and bytes.
fn time_op<D: KernelDevice>(dev: &D, op: &Op) -> Result<Timing> {
    let ms = crate::profile::time_repeated(dev, BENCH_LAUNCHES, op).map_err(|e| match e {
        Error::Unsupported(_) => crate::err!(
            Unsupported,
            "{} has no device timer: --bench needs a GPU",
            dev.describe()
        ),
        other => other,
    })?;
    let (flops, bytes) = op.work();
    Ok(Timing {
        ms,
        flops,
        bytes,
        precision: op.precision(),
    })
}

const BENCH_LAUNCHES: usize = 20;

/// A set of cases sharing inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// X [m,k]·W [k,n] and its gradients.
    Products {
        m: usize,
        n: usize,
        k: usize,
    },
    Loss {
        count: usize,
    },
    Adam {
        n: usize,
        t: u64,
    },
    /// LAMB over `n` parameters split as [`lamb_tensors`] splits them.
    Lamb {
        n: usize,
        t: u64,
    },
    Gather {
        rows: usize,
        dim: usize,
    },
    /// acc += add over `count` floats (`--accumulate`).
    Accumulate {
        count: usize,
    },
}

impl Group {
    /// The name its input streams derive from.
    pub fn name(&self) -> String {
        match *self {
            Group::Products { m, n, k } => format!("products {m}×{n}×{k}"),
            Group::Loss { count } => format!("loss {count}"),
            Group::Adam { n, t } => format!("adam {n} t={t}"),
            Group::Lamb { n, t } => format!("lamb {n} t={t}"),
            Group::Gather { rows, dim } => format!("gather {rows}×{dim}"),
            Group::Accumulate { count } => format!("accumulate {count}"),
        }
    }

    /// The 65,536-row products (`dae check` without `--quick`).
    pub fn is_large(&self) -> bool {
        matches!(*self, Group::Products { m, n, k } if m * n * k > 1 << 26)
    }

    /// Cheap enough for a thousand seeds on the host (the bound sweep).
    pub fn is_cheap(&self) -> bool {
        match *self {
            Group::Products { m, n, k } => m * n * k <= 1 << 16,
            Group::Loss { count } => count <= 1000,
            Group::Adam { n, .. } | Group::Lamb { n, .. } => n <= 1000,
            Group::Gather { rows, dim } => rows * dim <= 1 << 14,
            Group::Accumulate { count } => count <= 1 << 14,
        }
    }
}

/// LAMB's tensors over `n` parameters: a weight, its bias (no decay), a
/// gap of one element (left alone), a second weight and bias; boundaries
/// off the 4096-element chunks. Below 8 parameters, one decayed tensor.
pub fn lamb_tensors(n: usize) -> Vec<LambTensor> {
    let t = |offset, len, decay| LambTensor { offset, len, decay };
    if n < 8 {
        return vec![t(0, n, true)];
    }
    let bias = (n / 50).max(1);
    let w1 = (n - 2 * bias) / 2;
    let w2 = n - 2 * bias - w1 - 1;
    vec![
        t(0, w1, true),
        t(w1, bias, false),
        t(w1 + bias + 1, w2, true),
        t(w1 + bias + 1 + w2, bias, false),
    ]
}

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

/// Every group of the suite, in the order they run.
pub fn groups() -> Vec<Group> {
    let mut g: Vec<Group> = shapes(true)
        .into_iter()
        .map(|(m, n, k)| Group::Products { m, n, k })
        .collect();
    g.extend([1, 1000, 256 * 784 + 3, 1 << 20].map(|count| Group::Loss { count }));
    g.extend([(1, 1), (1000, 3), (222_384, 1000)].map(|(n, t)| Group::Adam { n, t }));
    g.extend([(1, 1), (1000, 3), (222_384, 1000)].map(|(n, t)| Group::Lamb { n, t }));
    g.extend([(1, 1), (300, 784), (1001, 13)].map(|(rows, dim)| Group::Gather { rows, dim }));
    // One float, an odd count (scalar path), the lab model's 222,384
    // parameters (float4 path).
    g.extend([1, 1001, 222_384].map(|count| Group::Accumulate { count }));
    g
}

/// The bound of a product reducing over `len` terms, per element against
/// Σ|a·b| (+|bias|): any-order fp32 summation of `len` FMA terms (split-K
/// partials included) and the bias add is within (len+2)·u32 of it; tensor
/// cores first round both operands (tf32 to 11 significant bits, 2⁻¹¹ each;
/// bf16 to 8, 2⁻⁸ each), and their accumulation is given twice fp32's
/// allowance for its truncating alignment (Fasi et al., "Numerical
/// behavior of NVIDIA tensor cores", PeerJ CS 2021). ReLU and the identity
/// are 1-Lipschitz, the sigmoid ¼-Lipschitz with ≤ 8 ulp of its own
/// (expf ≤ 2 ulp, then 1/(1+e), σ ≤ 1).
pub fn product_bound(p: Precision, len: usize, act: Activation, scale: &'static str) -> Bound {
    let chain = (len + 2) as f64 * U32;
    let (rel, rule) = match p {
        Precision::Fp32 => (chain, format!("(L+2)·u32, L={len}")),
        Precision::Tf32 => (
            1.01 * 2f64.powi(-10) + 2.0 * chain,
            format!("2⁻¹⁰ (tf32 operands) + 2·(L+2)·u32, L={len}"),
        ),
        Precision::Bf16 => (
            1.01 * 2f64.powi(-7) + 2.0 * chain,
            format!("2⁻⁷ (bf16 operands) + 2·(L+2)·u32, L={len}"),
        ),
    };
    let (abs, rule) = match act {
        Activation::Sigmoid => (8.0 * U32, format!("{rule}; sigmoid + 8·u32")),
        _ => (0.0, rule),
    };
    Bound::elementwise(abs, rel, scale, rule)
}

fn abs_of(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// `cell`'s value, computed by `init` on first use.
fn lazy<T>(cell: &OnceCell<T>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = init()?;
    Ok(cell.get_or_init(|| v))
}

/// A product group's inputs, on the host and on the device.
struct ProductInputs<D: KernelDevice> {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
    mask: Vec<f32>,
    xd: Buffer<D, f32>,
    wd: Buffer<D, f32>,
    bd: Buffer<D, f32>,
    dyd: Buffer<D, f32>,
    maskd: Buffer<D, f32>,
    /// Split-K scratch for every path (they run one at a time).
    work: Buffer<D, f32>,
}

pub(super) struct Checker<'a, D: KernelDevice> {
    dev: &'a D,
    seed: u64,
    sel: &'a Selection,
    /// Only record the keys; launch nothing.
    listing: bool,
    /// Also time each case's op on the device.
    bench: bool,
    goldens: Option<&'a Goldens>,
    /// Keep the golden cases' outputs (`Options::record`).
    recording: bool,
    /// Interior mutability: the groups' lazy inputs borrow the checker
    /// while cases are recorded.
    results: RefCell<Vec<CaseResult>>,
    recorded: RefCell<Vec<(String, Vec<f32>)>>,
    /// The M×N of the bias-gradient cases so far: two product shapes may
    /// share one (256×64×128, 256×64×32), and a case key is checked once.
    bias_shapes: RefCell<std::collections::HashSet<(usize, usize)>>,
}

impl<'a, D: KernelDevice> Checker<'a, D> {
    pub(super) fn new(
        dev: &'a D,
        seed: u64,
        sel: &'a Selection,
        listing: bool,
        opts: &Options<'a>,
    ) -> Self {
        Checker {
            dev,
            seed,
            sel,
            listing,
            bench: opts.bench,
            goldens: opts.goldens,
            recording: opts.record,
            results: RefCell::new(Vec::new()),
            recorded: RefCell::new(Vec::new()),
            bias_shapes: RefCell::default(),
        }
    }

    pub(super) fn into_run(self) -> SuiteRun {
        SuiteRun {
            results: self.results.into_inner(),
            recorded: self.recorded.into_inner(),
        }
    }

    /// Records a case that ran, its first run's output compared with (or
    /// kept as) its golden.
    fn record_run(&self, mut r: CaseResult, first_run: &[f32]) {
        if is_golden(&r.key) {
            let id = r.key.id();
            r.golden = self.goldens.and_then(|g| g.compare(&id, first_run));
            if self.recording {
                self.recorded.borrow_mut().push((id, first_run.to_vec()));
            }
        }
        self.record(r);
    }

    pub(super) fn group(&self, g: &Group) -> Result<()> {
        let name = g.name();
        match *g {
            Group::Products { m, n, k } => self.products(&name, m, n, k),
            Group::Loss { count } => self.loss(&name, count),
            Group::Adam { n, t } => self.adam(&name, n, t),
            Group::Lamb { n, t } => self.lamb(&name, n, t),
            Group::Gather { rows, dim } => self.gather(&name, rows, dim),
            Group::Accumulate { count } => self.accumulate(&name, count),
        }
    }

    /// Whether to run `key` (when listing, records it and says no).
    fn wants(&self, key: &CaseKey) -> bool {
        if self.listing {
            self.record(CaseResult::skip(key.clone(), "listed"));
            return false;
        }
        self.sel.matches(key)
    }

    fn record(&self, r: CaseResult) {
        self.results.borrow_mut().push(r);
    }

    fn rng(&self, group: &str, input: &str) -> Rng {
        Rng::named(self.seed, Purpose::Test, &format!("{group}/{input}"))
    }

    fn uniform(&self, group: &str, input: &str, len: usize, scale: f32) -> Vec<f32> {
        let mut r = self.rng(group, input);
        (0..len).map(|_| r.uniform_in(-scale, scale)).collect()
    }

    /// ±10^U(lo, hi): magnitudes spread over many decades, so terms such as
    /// Adam's ε matter for some elements of every case.
    fn log_uniform(&self, group: &str, input: &str, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut r = self.rng(group, input);
        (0..len)
            .map(|_| {
                let sign = if r.below(2) == 0 { -1.0 } else { 1.0 };
                sign * 10f32.powf(r.uniform_in(lo, hi))
            })
            .collect()
    }

    /// Runs the op from `make` twice into a fresh output of `skip + len`
    /// floats (NaN-poisoned before each run, or set to `initial` for an
    /// in-place op, then `before` runs), the output starting at element
    /// `skip` (1: only 4-byte aligned, like a layer's slice of the flat
    /// gradient buffer); `after` runs after each launch. Returns both runs'
    /// outputs, and with `bench` the op's device time.
    #[allow(clippy::too_many_arguments)]
    fn twice(
        &self,
        skip: usize,
        len: usize,
        initial: Option<&[f32]>,
        make: impl Fn(u64) -> Op,
        mut before: impl FnMut() -> Result<()>,
        mut after: impl FnMut() -> Result<()>,
    ) -> Result<([Vec<f32>; 2], Option<Timing>)> {
        let mut out = Buffer::<D, f32>::zeros(self.dev, skip + len)?;
        let mut start = vec![f32::NAN; skip + len];
        if let Some(init) = initial {
            start[skip..].copy_from_slice(init);
        }
        let mut run = || -> Result<Vec<f32>> {
            out.upload(self.dev, &start)?;
            before()?;
            self.dev.run(&make(out.at(skip)))?;
            after()?;
            Ok(out.download(self.dev, skip + len)?.split_off(skip))
        };
        let runs = [run()?, run()?];
        let timing = match self.bench {
            true => Some(time_op(self.dev, &make(out.at(skip)))?),
            false => None,
        };
        Ok((runs, timing))
    }

    /// `twice` for an op with nothing to prepare or collect.
    fn twice_plain(
        &self,
        skip: usize,
        len: usize,
        make: impl Fn(u64) -> Op,
    ) -> Result<([Vec<f32>; 2], Option<Timing>)> {
        self.twice(skip, len, None, make, || Ok(()), || Ok(()))
    }

    fn product_inputs(
        &self,
        group: &str,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<ProductInputs<D>> {
        let x = self.uniform(group, "x", m * k, 1.0);
        let w = self.uniform(group, "w", k * n, 0.5);
        let b = self.uniform(group, "b", n, 0.5);
        let dy = self.uniform(group, "dy", m * n, 1.0);
        let mask = self.uniform(group, "mask", m * k, 1.0);
        let sm = self.dev.sm_count();
        let s = GemmShape::new(m, n, k);
        let work_len = [
            SplitPlan::for_weight_grad(s, sm).partial_len(s.w_len()),
            SplitPlan::for_bias_grad(m, n, sm).partial_len(n),
            SplitPlan::for_forward(s, sm).partial_len(s.y_len()),
            SplitPlan::for_input_grad(s, sm).partial_len(s.x_len()),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let up = |v: &[f32]| Buffer::from_host(self.dev, v);
        Ok(ProductInputs {
            xd: up(&x)?,
            wd: up(&w)?,
            bd: up(&b)?,
            dyd: up(&dy)?,
            maskd: up(&mask)?,
            work: Buffer::zeros(self.dev, work_len)?,
            x,
            w,
            b,
            dy,
            mask,
        })
    }

    fn products(&self, group: &str, m: usize, n: usize, k: usize) -> Result<()> {
        let sm = self.dev.sm_count();
        let path = |plan: SplitPlan| match plan.splits {
            1 => "fused".to_string(),
            s => format!("split-K×{s}"),
        };
        let shape = format!("{m}×{n}×{k}");
        let dims = GemmShape::new(m, n, k);
        let inputs = OnceCell::new();
        let inputs = || lazy(&inputs, || self.product_inputs(group, m, n, k));
        // References and magnitudes (the same reference on |inputs|), each
        // computed once, when a selected case first needs it.
        let cache: RefCell<Vec<(String, Rc<Vec<f64>>)>> = RefCell::default();
        let cached = |id: String, make: &dyn Fn() -> Vec<f64>| -> Rc<Vec<f64>> {
            if let Some((_, v)) = cache.borrow().iter().find(|(k, _)| *k == id) {
                return v.clone();
            }
            let v = Rc::new(make());
            cache.borrow_mut().push((id, v.clone()));
            v
        };
        for p in Precision::ALL {
            for v in Product::variants(m * n * k <= 1 << 26) {
                let key = CaseKey::new(v.family(), v.name(), p, shape.clone());
                if !self.wants(&key) {
                    continue;
                }
                let t0 = Instant::now();
                let i = inputs()?;
                let want = cached(v.reference_id(), &|| v.reference(i, dims));
                let mag = cached(v.magnitude_id(), &|| v.magnitude(i, dims));
                let (len, cols) = v.output(dims);
                let (runs, timing) =
                    self.twice_plain(v.skip(), len, |out| v.op(i, p, out, dims))?;
                let plan = match v {
                    Product::Fwd { .. } => SplitPlan::for_forward(dims, sm),
                    Product::Dx { .. } => SplitPlan::for_input_grad(dims, sm),
                    Product::Dw { .. } => SplitPlan::for_weight_grad(dims, sm),
                };
                let bound = product_bound(p, v.reduction(dims), v.activation(), v.scale());
                let r = CaseResult::from_runs(
                    key,
                    path(plan),
                    bound,
                    [&runs[0], &runs[1]],
                    &want,
                    Some(&mag),
                    cols,
                    t0,
                );
                self.record_run(r.timed(timing), &runs[0]);
            }
        }
        if !self.bias_shapes.borrow_mut().insert((m, n)) {
            return Ok(());
        }
        let db_path = path(SplitPlan::for_bias_grad(m, n, sm));
        for (name, skip) in [("bias_grad", 0), ("bias_grad unaligned-out", 1)] {
            let key = CaseKey::new("bias_grad", name, Precision::Fp32, format!("{m}×{n}"));
            if !self.wants(&key) {
                continue;
            }
            let t0 = Instant::now();
            let i = inputs()?;
            let want = cached("colsum".into(), &|| reference::column_sums(&i.dy, m, n));
            let mag = cached("colsum |dy|".into(), &|| {
                reference::column_sums(&abs_of(&i.dy), m, n)
            });
            let (runs, timing) = self.twice_plain(skip, n, |out| {
                Op::BiasGrad(BiasGrad {
                    dy: i.dyd.ptr(),
                    db: out,
                    work: i.work.ptr(),
                    m,
                    n,
                })
            })?;
            let bound = Bound::elementwise(
                0.0,
                (m + 2) as f64 * U32,
                "Σ|dy|",
                format!("(M+2)·u32, M={m}: any-order fp32 column sum"),
            );
            let r = CaseResult::from_runs(
                key,
                db_path.clone(),
                bound,
                [&runs[0], &runs[1]],
                &want,
                Some(&mag),
                n,
                t0,
            );
            self.record_run(r.timed(timing), &runs[0]);
        }
        Ok(())
    }
    fn loss(&self, group: &str, count: usize) -> Result<()> {
        let shape = count.to_string();
        let keys = [
            CaseKey::new(
                "bce_logits",
                "bce_logits grad",
                Precision::Fp32,
                shape.clone(),
            ),
            CaseKey::new("bce_logits", "bce_logits loss", Precision::Fp32, shape),
        ];
        let wanted: Vec<bool> = keys.iter().map(|k| self.wants(k)).collect();
        if !wanted.iter().any(|&w| w) {
            return Ok(());
        }
        let t0 = Instant::now();
        let z = self.uniform(group, "z", count, 8.0);
        let t: Vec<f32> = abs_of(&self.uniform(group, "t", count, 1.0));
        let dev = self.dev;
        let (zd, td) = (Buffer::from_host(dev, &z)?, Buffer::from_host(dev, &t)?);
        let partial = Buffer::<D, f32>::zeros(dev, LOSS_BLOCKS)?;
        let sum = std::cell::RefCell::new(Buffer::<D, f64>::zeros(dev, 1)?);
        let sum_ptr = sum.borrow().ptr();
        let scale = 1.0 / count as f32;
        let mut sums = Vec::new();
        let (grads, timing) = self.twice(
            0,
            count,
            None,
            |out| {
                Op::Bce(Bce {
                    z: zd.ptr(),
                    t: td.ptr(),
                    dz: out,
                    partial: partial.ptr(),
                    accum: sum_ptr,
                    count,
                    // The check's loss is flat: one row.
                    rows: 1,
                    grad_scale: scale,
                    weight: 1.0,
                })
            },
            || sum.borrow_mut().upload(dev, &[0.0]),
            || {
                sums.push(sum.borrow().download(dev, 1)?[0]);
                Ok(())
            },
        )?;
        let (want_loss, want_grad) = reference::bce_logits(&z, &t, scale as f64);
        let [k_grad, k_loss] = keys;
        if wanted[0] {
            // dz = (σ(z) − t)·scale: σ within 4 ulp of ≤ 1, then a subtraction
            // and a product.
            let bound = Bound::elementwise(
                6.0 * U32 * scale as f64,
                3.0 * U32,
                "|want|",
                "6·u32·scale + 3·u32·|dz|: σ(z) ≤ 4 ulp of 1, (σ−t)·scale".into(),
            );
            self.record(
                CaseResult::from_runs(
                    k_grad,
                    String::new(),
                    bound,
                    [&grads[0], &grads[1]],
                    &want_grad,
                    None,
                    count,
                    t0,
                )
                .timed(timing.clone()),
            );
        }
        if wanted[1] {
            // Each term max(z,0) − z·t + log1p(e^−|z|) is within 8 ulp of its
            // parts' magnitudes; the sum of non-negative terms adds at most
            // fp32 chains of 1,024 (the CPU's lanes; the GPU sums in double).
            let parts: f64 = z
                .iter()
                .zip(&t)
                .map(|(&z, &t)| {
                    let (z, t) = (z as f64, t as f64);
                    z.max(0.0) + (z * t).abs() + (-z.abs()).exp().ln_1p()
                })
                .sum();
            let bound = Bound::elementwise(
                0.0,
                8.0 * U32,
                "Σparts+128·Σloss",
                "8·u32·(Σ(max(z,0)+|z·t|+log1p(e^−|z|)) + 128·Σloss): per-term ulps, fp32 chains ≤ 1,024".into(),
            );
            self.record(
                CaseResult::from_runs(
                    k_loss,
                    String::new(),
                    bound,
                    [&sums[..1], &sums[1..2]],
                    &[want_loss],
                    Some(&[parts + 128.0 * want_loss]),
                    1,
                    t0,
                )
                .timed(timing.clone()),
            );
        }
        Ok(())
    }

    fn adam(&self, group: &str, n: usize, t: u64) -> Result<()> {
        let shape = n.to_string();
        let keys = ["p", "m", "v"].map(|out| {
            CaseKey::new(
                "adam",
                format!("adam {out} (t={t})"),
                Precision::Fp32,
                shape.clone(),
            )
        });
        let wanted: Vec<bool> = keys.iter().map(|k| self.wants(k)).collect();
        if !wanted.iter().any(|&w| w) {
            return Ok(());
        }
        let t0 = Instant::now();
        let cfg = AdamConfig::default();
        let schedule = crate::schedule::LrSchedule::constant(cfg.lr)?;
        let dev = self.dev;
        let p0 = self.uniform(group, "p", n, 1.0);
        let g = self.log_uniform(group, "g", n, -8.0, -1.0);
        let m0 = self.log_uniform(group, "m", n, -9.0, -2.0);
        let v0: Vec<f32> = abs_of(&self.log_uniform(group, "v", n, -16.0, -3.0));
        let gd = Buffer::from_host(dev, &g)?;
        let moments =
            std::cell::RefCell::new((Buffer::from_host(dev, &m0)?, Buffer::from_host(dev, &v0)?));
        let (m_ptr, v_ptr) = (moments.borrow().0.ptr(), moments.borrow().1.ptr());
        // The step counter as the train step keeps it: t−1, incremented on
        // the device.
        let step = Buffer::<D, i32>::from_host(dev, &[t as i32 - 1])?;
        dev.run(&Op::StepIncrement(StepIncrement { step: step.ptr() }))?;
        // The parameters are the output (poisoned, then set to p0); m and v
        // are reset before each run and read after it.
        let mut collected: Vec<[Vec<f32>; 2]> = Vec::new();
        let (p_runs, timing) = self.twice(
            0,
            n,
            Some(&p0),
            |out| {
                Op::Adam(AdamStep {
                    params: out,
                    grads: gd.ptr(),
                    m: m_ptr,
                    v: v_ptr,
                    n,
                    step: step.ptr(),
                    cfg,
                    schedule,
                })
            },
            || {
                let mut mv = moments.borrow_mut();
                mv.0.upload(dev, &m0)?;
                mv.1.upload(dev, &v0)?;
                Ok(())
            },
            || {
                let mv = moments.borrow();
                collected.push([mv.0.download(dev, n)?, mv.1.download(dev, n)?]);
                Ok(())
            },
        )?;
        let [[m1, v1], [m2, v2], ..] = &collected[..] else {
            crate::fail!(Plan, "adam ran fewer than twice");
        };
        let runs: [[&[f32]; 2]; 3] = [[&p_runs[0], &p_runs[1]], [m1, m2], [v1, v2]];
        let (rp, rm, rv) = reference::adam(&p0, &g, &m0, &v0, t, &cfg);
        let (b1, eps) = (cfg.beta1 as f64, cfg.eps as f64);
        let alpha = cfg.alpha(t) as f64;
        // m' = b1·m + (1−b1)·g: two products and a sum.
        let m_mag: Vec<f64> = (0..n)
            .map(|i| b1 * (m0[i] as f64).abs() + (1.0 - b1) * (g[i] as f64).abs())
            .collect();
        // p' = p − α·m'/(√v'+ε): the step δ within 7 ulp plus m''s own error
        // carried through α/(√v'+ε), then one rounding of p'.
        let p_mag: Vec<f64> = (0..n)
            .map(|i| {
                let denom = rv[i].sqrt() + eps;
                rp[i].abs() + 8.0 * (alpha * rm[i] / denom).abs() + 3.0 * alpha * m_mag[i] / denom
            })
            .collect();
        let bounds = [
            (
                Bound::elementwise(0.0, 2.0 * U32, "|p'|+8|δ|+3α·(b1|m|+(1−b1)|g|)/(√v'+ε)", "2·u32: δ = α·m'/(√v'+ε) within 7 ulp, m' within 3 ulp of its terms, one rounding of p'".into()),
                &rp,
                Some(&p_mag),
            ),
            (
                Bound::elementwise(0.0, 3.0 * U32, "b1|m|+(1−b1)|g|", "3·u32: two products and a sum".into()),
                &rm,
                Some(&m_mag),
            ),
            (
                Bound::elementwise(0.0, 5.0 * U32, "|want|", "5·u32: non-negative terms, four roundings".into()),
                &rv,
                None,
            ),
        ];
        for (j, (key, (bound, want, mag))) in keys.into_iter().zip(bounds).enumerate() {
            if wanted[j] {
                let r = CaseResult::from_runs(
                    key,
                    String::new(),
                    bound,
                    runs[j],
                    want,
                    mag.map(|v| &v[..]),
                    n,
                    t0,
                );
                self.record_run(
                    r.timed(if j == 0 { timing.clone() } else { None }),
                    runs[j][0],
                );
            }
        }
        Ok(())
    }

    /// One LAMB step (weight decay 0.01 on the weights): p, m and v against
    /// the f64 reference under `reference_lamb::lamb_bounds`, each run twice.
    fn lamb(&self, group: &str, n: usize, t: u64) -> Result<()> {
        let shape = n.to_string();
        let keys = ["p", "m", "v"].map(|out| {
            CaseKey::new(
                "lamb",
                format!("lamb {out} (t={t})"),
                Precision::Fp32,
                shape.clone(),
            )
        });
        let wanted: Vec<bool> = keys.iter().map(|k| self.wants(k)).collect();
        if !wanted.iter().any(|&w| w) {
            return Ok(());
        }
        let t0 = Instant::now();
        let cfg = AdamConfig {
            weight_decay: 0.01,
            ..AdamConfig::default()
        };
        let schedule = crate::schedule::LrSchedule::constant(cfg.lr)?;
        let tensors = lamb_tensors(n);
        let table = LambTable::new(&tensors, n)?;
        let dev = self.dev;
        // Moments of one scale (not Adam's decades): with a few elements of
        // â = m̂/√v̂ in the thousands, ‖u‖ makes every step and the decay in
        // it smaller than one rounding of p, where no bound can see them.
        let p0 = self.uniform(group, "p", n, 1.0);
        let g = self.uniform(group, "g", n, 1e-2);
        let m0 = self.uniform(group, "m", n, 1e-3);
        let v0: Vec<f32> = self
            .uniform(group, "v", n, 1.0)
            .iter()
            .map(|x| 1e-5 * x * x)
            .collect();
        let words = Buffer::<D, i32>::from_host(dev, &table.words)?;
        let scratch = Buffer::<D, f64>::zeros(dev, table.scratch_len())?;
        // g is overwritten with the update, m and v updated in place: all
        // three are reset before each run, m and v read after it.
        let state = RefCell::new((
            Buffer::from_host(dev, &g)?,
            Buffer::from_host(dev, &m0)?,
            Buffer::from_host(dev, &v0)?,
        ));
        let (g_ptr, m_ptr, v_ptr) = {
            let s = state.borrow();
            (s.0.ptr(), s.1.ptr(), s.2.ptr())
        };
        let step = Buffer::<D, i32>::from_host(dev, &[t as i32 - 1])?;
        dev.run(&Op::StepIncrement(StepIncrement { step: step.ptr() }))?;
        let mut collected: Vec<[Vec<f32>; 2]> = Vec::new();
        let (p_runs, timing) = self.twice(
            0,
            n,
            Some(&p0),
            |out| {
                Op::Lamb(LambStep {
                    buffers: LambBuffers {
                        params: out,
                        grads: g_ptr,
                        m: m_ptr,
                        v: v_ptr,
                        step: step.ptr(),
                        table: words.ptr(),
                        scratch: scratch.ptr(),
                    },
                    tensors: table.tensors,
                    chunks: table.chunks,
                    elements: n,
                    cfg,
                    schedule,
                })
            },
            || {
                let mut s = state.borrow_mut();
                s.0.upload(dev, &g)?;
                s.1.upload(dev, &m0)?;
                s.2.upload(dev, &v0)?;
                Ok(())
            },
            || {
                let s = state.borrow();
                collected.push([s.1.download(dev, n)?, s.2.download(dev, n)?]);
                Ok(())
            },
        )?;
        let [[m1, v1], [m2, v2], ..] = &collected[..] else {
            crate::fail!(Plan, "lamb ran fewer than twice");
        };
        let runs: [[&[f32]; 2]; 3] = [[&p_runs[0], &p_runs[1]], [m1, m2], [v1, v2]];
        let inputs = [p0, g, m0, v0];
        let (want, mag) = reference_lamb::lamb_bounds(&inputs, t, &cfg, &tensors);
        let rules = [
            (
                "|p'|+24·lr·r·(|â|+wd|w|)",
                "u32: u within ~10 ulp, r within ~4, lr·r·u two roundings, one of p'",
            ),
            ("b1|m|+(1−b1)|g|", "3·u32: two products and a sum"),
            ("b2·v+(1−b2)·g²", "3·u32: non-negative terms"),
        ];
        for (j, key) in keys.into_iter().enumerate() {
            if wanted[j] {
                let (scale, rule) = rules[j];
                let bound = Bound::elementwise(0.0, reference_lamb::REL[j], scale, rule.into());
                let r = CaseResult::from_runs(
                    key,
                    String::new(),
                    bound,
                    runs[j],
                    &want[j],
                    Some(&mag[j]),
                    n,
                    t0,
                );
                self.record_run(
                    r.timed(if j == 0 { timing.clone() } else { None }),
                    runs[j][0],
                );
            }
        }
        Ok(())
    }

    /// acc += add in place: the output is set to `acc` before each run (an
    /// unwritten element keeps `acc`, which differs from the sum wherever
    /// `add` ≠ 0; the float before an unaligned output stays poisoned).
    /// One fp32 addition per element: exactly the f64 sum rounded to f32.
    fn accumulate(&self, group: &str, count: usize) -> Result<()> {
        let shape = count.to_string();
        for (name, skip) in [("accumulate_add", 0), ("accumulate_add unaligned", 1)] {
            let key = CaseKey::new("accumulate_add", name, Precision::Fp32, shape.clone());
            if !self.wants(&key) {
                continue;
            }
            let t0 = Instant::now();
            let acc = self.log_uniform(group, "acc", count, -6.0, 1.0);
            let add = self.log_uniform(group, "add", count, -6.0, 1.0);
            let addd = Buffer::from_host(self.dev, &add)?;
            let (runs, timing) = self.twice(
                skip,
                count,
                Some(&acc),
                |out| {
                    Op::AccumulateAdd(AccumulateAdd {
                        acc: out,
                        add: addd.ptr(),
                        count,
                    })
                },
                || Ok(()),
                || Ok(()),
            )?;
            let want: Vec<f64> = acc
                .iter()
                .zip(&add)
                .map(|(&a, &b)| (a as f64 + b as f64) as f32 as f64)
                .collect();
            let bound = Bound::exact("one fp32 addition: the f64 sum rounded to f32");
            let r = CaseResult::from_runs(
                key,
                String::new(),
                bound,
                [&runs[0], &runs[1]],
                &want,
                None,
                count,
                t0,
            );
            self.record_run(r.timed(timing), &runs[0]);
        }
        Ok(())
    }

    fn gather(&self, group: &str, rows: usize, dim: usize) -> Result<()> {
        let shape = format!("{rows}×{dim}");
        let keys = ["gather_u8", "gather_u8_dev"]
            .map(|name| CaseKey::new("gather", name, Precision::Fp32, shape.clone()));
        let wanted: Vec<bool> = keys.iter().map(|k| self.wants(k)).collect();
        if !wanted.iter().any(|&w| w) {
            return Ok(());
        }
        let dev = self.dev;
        let mut r = self.rng(group, "data");
        let data: Vec<u8> = (0..rows * dim).map(|_| r.below(256) as u8).collect();
        let mut perm: Vec<u32> = (0..rows as u32).collect();
        self.rng(group, "perm").shuffle(&mut perm);
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
        let offsets = [Offset::Value(offset), Offset::Device(od.ptr())];
        for ((key, off), wanted) in keys.into_iter().zip(offsets).zip(wanted) {
            if !wanted {
                continue;
            }
            let t0 = Instant::now();
            let (runs, timing) = self.twice_plain(0, take * dim, |o| {
                Op::Gather(Gather {
                    u8_data: true,
                    data: dd.ptr(),
                    index: pd.ptr(),
                    offset: off,
                    rows: take,
                    dim,
                    out: o,
                })
            })?;
            let bound = Bound::exact("the CPU's own division: v as f32 / 255");
            self.record(
                CaseResult::from_runs(
                    key,
                    String::new(),
                    bound,
                    [&runs[0], &runs[1]],
                    &want,
                    None,
                    dim,
                    t0,
                )
                .timed(timing.clone()),
            );
        }
        Ok(())
    }
}

/// One product case of a group: which kernel, and its variant.
#[derive(Clone, Copy)]
enum Product {
    /// act(X·W + b); without the bias into a 4-byte aligned output.
    Fwd { act: Activation, bias: bool },
    /// dY·Wᵀ masked by ReLU′; without the mask into a 4-byte aligned output.
    Dx { mask: bool },
    /// Xᵀ·dY, into a 4-byte aligned output when `unaligned`.
    Dw { unaligned: bool },
}

impl Product {
    /// The cases of a group; the large products check fewer variants
    /// (their float64 references dominate the run time).
    fn variants(small: bool) -> Vec<Product> {
        use Activation::{Identity, Relu, Sigmoid};
        let acts: &[Activation] = if small {
            &[Identity, Relu, Sigmoid]
        } else {
            &[Relu]
        };
        let mut v: Vec<Product> = acts
            .iter()
            .map(|&act| Product::Fwd { act, bias: true })
            .collect();
        v.push(Product::Dx { mask: true });
        if small {
            v.push(Product::Fwd {
                act: Relu,
                bias: false,
            });
            v.push(Product::Dx { mask: false });
        }
        v.extend([
            Product::Dw { unaligned: false },
            Product::Dw { unaligned: true },
        ]);
        v
    }

    fn family(self) -> &'static str {
        match self {
            Product::Fwd { .. } => "gemm_fwd",
            Product::Dx { .. } => "gemm_dx",
            Product::Dw { .. } => "gemm_dw",
        }
    }

    fn name(self) -> String {
        match self {
            Product::Fwd { act, bias: true } => format!("gemm_fwd {}", act.name()),
            Product::Fwd { act, bias: false } => {
                format!("gemm_fwd {} no-bias unaligned-out", act.name())
            }
            Product::Dx { mask: true } => "gemm_dx relu-mask".into(),
            Product::Dx { mask: false } => "gemm_dx no-mask unaligned-out".into(),
            Product::Dw { unaligned: false } => "gemm_dw".into(),
            Product::Dw { unaligned: true } => "gemm_dw unaligned-out".into(),
        }
    }

    /// Elements before the output (1: only 4-byte aligned, like a layer's
    /// slice of the flat gradient buffer).
    fn skip(self) -> usize {
        match self {
            Product::Fwd { bias, .. } => usize::from(!bias),
            Product::Dx { mask } => usize::from(!mask),
            Product::Dw { unaligned } => usize::from(unaligned),
        }
    }

    /// (elements, row length) of the output.
    fn output(self, d: GemmShape) -> (usize, usize) {
        match self {
            Product::Fwd { .. } => (d.m * d.n, d.n),
            Product::Dx { .. } => (d.m * d.k, d.k),
            Product::Dw { .. } => (d.k * d.n, d.n),
        }
    }

    /// The reduction length of each output element.
    fn reduction(self, d: GemmShape) -> usize {
        match self {
            Product::Fwd { .. } => d.k,
            Product::Dx { .. } => d.n,
            Product::Dw { .. } => d.m,
        }
    }

    fn activation(self) -> Activation {
        match self {
            Product::Fwd { act, .. } => act,
            _ => Activation::Identity,
        }
    }

    fn scale(self) -> &'static str {
        match self {
            Product::Fwd { bias: true, .. } => "Σ|x·w|+|b|",
            Product::Fwd { bias: false, .. } => "Σ|x·w|",
            Product::Dx { .. } => "Σ|dy·w|",
            Product::Dw { .. } => "Σ|x·dy|",
        }
    }

    fn op<D: KernelDevice>(self, i: &ProductInputs<D>, p: Precision, out: u64, d: GemmShape) -> Op {
        let work = i.work.ptr();
        match self {
            Product::Fwd { act, bias } => Op::GemmFwd(Forward {
                p,
                x: i.xd.ptr(),
                w: i.wd.ptr(),
                b: if bias { i.bd.ptr() } else { 0 },
                y: out,
                work,
                shape: d,
                act,
            }),
            Product::Dx { mask } => Op::GemmDx(InputGrad {
                p,
                dy: i.dyd.ptr(),
                w: i.wd.ptr(),
                mask: if mask { i.maskd.ptr() } else { 0 },
                dx: out,
                work,
                shape: d,
            }),
            Product::Dw { .. } => Op::GemmDw(WeightGrad {
                p,
                x: i.xd.ptr(),
                dy: i.dyd.ptr(),
                dw: out,
                work,
                shape: d,
            }),
        }
    }

    /// What the float64 reference of this case is cached under: the
    /// aligned and unaligned outputs share theirs.
    fn reference_id(self) -> String {
        match self {
            Product::Fwd { act, bias } => format!("fwd {} {bias}", act.name()),
            Product::Dx { mask } => format!("dx {mask}"),
            Product::Dw { .. } => "dw".into(),
        }
    }

    fn reference<D: KernelDevice>(self, i: &ProductInputs<D>, d: GemmShape) -> Vec<f64> {
        match self {
            Product::Fwd { act, bias } => {
                reference::dense_forward(&i.x, &i.w, bias.then_some(&i.b[..]), d, act)
            }
            Product::Dx { mask } => {
                reference::dense_backward_input(&i.dy, &i.w, mask.then_some(&i.mask[..]), d)
            }
            Product::Dw { .. } => reference::dense_backward_weight(&i.x, &i.dy, d),
        }
    }

    fn magnitude_id(self) -> String {
        match self {
            Product::Fwd { bias, .. } => format!("|fwd| {bias}"),
            Product::Dx { .. } => "|dx|".into(),
            Product::Dw { .. } => "|dw|".into(),
        }
    }

    /// Σ|a·b| per output element: the same reference on |inputs|.
    fn magnitude<D: KernelDevice>(self, i: &ProductInputs<D>, d: GemmShape) -> Vec<f64> {
        let (x, w, dy) = (abs_of(&i.x), abs_of(&i.w), abs_of(&i.dy));
        match self {
            Product::Fwd { bias, .. } => {
                let b = abs_of(&i.b);
                let b = bias.then_some(&b[..]);
                reference::dense_forward(&x, &w, b, d, Activation::Identity)
            }
            Product::Dx { .. } => reference::dense_backward_input(&dy, &w, None, d),
            Product::Dw { .. } => reference::dense_backward_weight(&x, &dy, d),
        }
    }
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
                let s = GemmShape::new(m, n, k);
                (
                    SplitPlan::for_forward(s, sm).splits,
                    SplitPlan::for_input_grad(s, sm).splits,
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
        let s = GemmShape::new(m, n, k);
        for p in [
            SplitPlan::for_forward(s, 132),
            SplitPlan::for_input_grad(s, 132),
            SplitPlan::for_weight_grad(s, 132),
        ] {
            assert!(p.splits > 1 && p.per_split >= 64, "{p:?}");
        }
    }

    fn splits_at_132((m, n, k): (usize, usize, usize)) -> (usize, usize) {
        let s = GemmShape::new(m, n, k);
        (
            SplitPlan::for_forward(s, 132).splits,
            SplitPlan::for_input_grad(s, 132).splits,
        )
    }

    #[test]
    fn large_and_cheap_groups() {
        let g = groups();
        assert_eq!(g.iter().filter(|g| g.is_large()).count(), 2);
        assert!(g.iter().filter(|g| g.is_cheap()).count() >= 8);
        assert!(g.iter().all(|g| !(g.is_large() && g.is_cheap())));
        let names: std::collections::HashSet<String> = g.iter().map(|g| g.name()).collect();
        assert_eq!(
            names.len(),
            g.len(),
            "group names (input streams) are distinct"
        );
    }
}
