//! The GPU-only parts of `dae bench`: the machine's measured ceilings, the
//! per-kernel breakdown of one train step, and our GEMMs against cuBLAS.

use anyhow::Result;
use dae_core::cuda::cublas::{to_bf16, Cublas};
use dae_core::cuda::Gpu;
use dae_core::ops::{Forward, Op, SplitPlan};
use dae_core::profile::{gemm_rate, time_repeated, LAUNCHES_PER_GRAPH};
use dae_core::{Activation, Buffer, GemmShape, Precision};
use dae_data::Dataset;
use dae_model::{Architecture, CudaBackend, TrainConfig, TrainState};
use serde_json::{json, Value};
use std::rc::Rc;

/// Side of the square product that measures the matrix ceiling.
const PEAK_GEMM: usize = 8192;

/// The ceilings: copy bandwidth, and the large-GEMM rate per precision (ours
/// and cuBLAS's); the best GEMM rate is what "% of peak" refers to.
pub fn peaks(gpu: &Gpu, precisions: &[Precision]) -> Result<Value> {
    let copy = gpu.copy_bandwidth()?;
    say!("ceilings: device-to-device copy {copy:.0} GB/s (read + write)");
    let blas = Cublas::new(gpu)?;
    let mut gemm = serde_json::Map::new();
    for &p in precisions {
        let ours = gemm_rate(gpu, p, PEAK_GEMM)?;
        let theirs = match &blas {
            Some(b) => Some(cublas_rate(
                gpu,
                b,
                p,
                GemmShape::new(PEAK_GEMM, PEAK_GEMM, PEAK_GEMM),
            )?),
            None => None,
        };
        say!(
            "ceilings: {PEAK_GEMM}³ GEMM {}: dae {ours:.1} TFLOP/s, cuBLAS {}",
            p.name(),
            theirs.map_or("unavailable".into(), |t| format!("{t:.1} TFLOP/s"))
        );
        gemm.insert(
            p.name().into(),
            json!({"dae_tflops": ours, "cublas_tflops": theirs, "peak_tflops": theirs.unwrap_or(0.0).max(ours)}),
        );
    }
    Ok(json!({"copy_gbps": copy, "gemm": gemm, "gemm_size": PEAK_GEMM}))
}

type Operands = (Buffer<Gpu, f32>, Buffer<Gpu, f32>, Buffer<Gpu, f32>);

fn operands(gpu: &Gpu, s: GemmShape) -> Result<Operands> {
    let fill = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    Ok((
        Buffer::from_host(gpu, &fill(s.x_len()))?,
        Buffer::from_host(gpu, &fill(s.w_len()))?,
        Buffer::zeros(gpu, s.y_len())?,
    ))
}

fn cublas_ms(gpu: &Gpu, blas: &Cublas, p: Precision, s: GemmShape) -> Result<f64> {
    let (x, w, y) = operands(gpu, s)?;
    let time =
        |x: u64, w: u64| gpu.time_enqueued(LAUNCHES_PER_GRAPH, || blas.gemm(p, x, w, y.ptr(), s));
    Ok(if p == Precision::Bf16 {
        let xs = x.download(gpu, s.x_len())?;
        let ws = w.download(gpu, s.w_len())?;
        let (x16, w16) = (to_bf16(gpu, &xs)?, to_bf16(gpu, &ws)?);
        time(x16.ptr(), w16.ptr())?
    } else {
        time(x.ptr(), w.ptr())?
    })
}

fn cublas_rate(gpu: &Gpu, blas: &Cublas, p: Precision, s: GemmShape) -> Result<f64> {
    Ok(s.flops() / (cublas_ms(gpu, blas, p, s)? * 1e-3) / 1e12)
}

/// Our forward GEMM (with its bias + ReLU epilogue) against cuBLAS's plain
/// product on every layer shape of the model at the given batch sizes.
pub fn gemm_vs_cublas(
    gpu: &Gpu,
    arch: &Architecture,
    batches: &[usize],
    precisions: &[Precision],
) -> Result<Value> {
    let Some(blas) = Cublas::new(gpu)? else {
        say!("cuBLAS not found: skipping the GEMM comparison");
        return Ok(Value::Null);
    };
    say!("\nour GEMM (fwd + bias+ReLU; split-K where the tiles underfill the GPU) vs cuBLAS (plain product), ms per launch");
    say!(
        "{:<6}{:>22} {:>10} {:>10} {:>8}",
        "prec",
        "M×N×K",
        "dae",
        "cuBLAS",
        "ratio"
    );
    let mut rows = Vec::new();
    for &p in precisions {
        for &m in batches {
            for l in arch.layers() {
                let s = l.shape(m);
                let (x, w, y) = operands(gpu, s)?;
                let b = Buffer::<Gpu, f32>::zeros(gpu, s.n)?;
                // Split-K scratch, as the model gives it (small M splits over k).
                let plan = SplitPlan::for_forward(s, gpu.sm_count as usize);
                let work = Buffer::<Gpu, f32>::zeros(gpu, plan.partial_len(s.y_len()))?;
                let op = Op::GemmFwd(Forward {
                    p,
                    x: x.ptr(),
                    w: w.ptr(),
                    b: b.ptr(),
                    y: y.ptr(),
                    work: work.ptr(),
                    shape: s,
                    act: Activation::Relu,
                });
                let ours = time_repeated(gpu, LAUNCHES_PER_GRAPH, &op)?;
                let theirs = cublas_ms(gpu, &blas, p, s)?;
                say!(
                    "{:<6}{:>22} {ours:>10.4} {theirs:>10.4} {:>7.2}x",
                    p.name(),
                    s.to_string(),
                    ours / theirs
                );
                let (m, n, k) = (s.m, s.n, s.k);
                rows.push(json!({"precision": p.name(), "m": m, "n": n, "k": k, "dae_ms": ours, "cublas_ms": theirs, "ratio": ours / theirs}));
            }
        }
    }
    Ok(Value::Array(rows))
}

/// Per-kernel time of one train step, its rates and fraction of the ceilings.
pub fn breakdown(
    gpu: &Rc<Gpu>,
    arch: &Architecture,
    train: &Dataset,
    batch: usize,
    p: Precision,
    peaks: &Value,
) -> Result<Value> {
    let cfg = TrainConfig {
        batch,
        precision: p,
        ..TrainConfig::lab()
    };
    let mut backend = CudaBackend::on(
        gpu.clone(),
        arch,
        cfg.adam(),
        p,
        batch,
        TrainState::initialize(arch, cfg.seed),
    )?;
    let profile = backend.profile_step(train, batch.min(train.rows))?;
    let copy = peaks["copy_gbps"].as_f64().unwrap_or(0.0);
    let gemm_peak = peaks["gemm"][p.name()]["peak_tflops"]
        .as_f64()
        .unwrap_or(0.0);
    say!("\nstep breakdown: batch {batch}, {}", p.name());
    say!(
        "{:<22}{:>10}{:>10}{:>9}{:>10}{:>9}",
        "kernel",
        "µs",
        "TFLOP/s",
        "% peak",
        "GB/s",
        "% copy"
    );
    let mut ops = Vec::new();
    for o in &profile.ops {
        let tflops = o.flops / (o.ms * 1e-3) / 1e12;
        let gbps = o.bytes / (o.ms * 1e-3) / 1e9;
        let pf = if gemm_peak > 0.0 {
            100.0 * tflops / gemm_peak
        } else {
            0.0
        };
        let pb = if copy > 0.0 { 100.0 * gbps / copy } else { 0.0 };
        say!(
            "{:<22}{:>10.1}{:>10.2}{:>8.1}%{:>10.0}{:>8.1}%",
            o.name,
            o.ms * 1e3,
            tflops,
            pf,
            gbps,
            pb
        );
        ops.push(
            json!({"kernel": o.name, "ms": o.ms, "flops": o.flops, "bytes": o.bytes,
                        "tflops": tflops, "gbps": gbps, "pct_gemm_peak": pf, "pct_copy_bw": pb}),
        );
    }
    say!(
        "step (one graph replay) {:.1} µs = kernels {:.1} µs + launch gaps {:.1} µs",
        profile.step_ms * 1e3,
        profile.kernel_ms() * 1e3,
        profile.gap_ms() * 1e3
    );
    Ok(
        json!({"batch": batch, "precision": p.name(), "step_ms": profile.step_ms,
              "kernel_ms": profile.kernel_ms(), "gap_ms": profile.gap_ms(), "ops": ops}),
    )
}
