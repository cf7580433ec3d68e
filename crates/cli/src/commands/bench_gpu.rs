//! The GPU-only parts of `dae bench`: the machine's measured ceilings, the
//! per-kernel breakdown of one train step, and our GEMMs against cuBLAS.

use anyhow::Result;
use dae_core::cuda::cublas::{to_bf16, Cublas};
use dae_core::cuda::ops::Op;
use dae_core::cuda::profile::{copy_bandwidth, gemm_rate, time_repeated, LAUNCHES_PER_GRAPH};
use dae_core::cuda::{DeviceBuffer, Gpu, Precision, SplitPlan};
use dae_core::Activation;
use dae_data::Dataset;
use dae_model::{Architecture, CudaBackend, TrainConfig, TrainState};
use serde_json::{json, Value};

/// Side of the square product that measures the matrix ceiling.
const PEAK_GEMM: usize = 8192;

/// The ceilings: copy bandwidth, and the large-GEMM rate per precision (ours
/// and cuBLAS's); the best GEMM rate is what "% of peak" refers to.
pub fn peaks(gpu: &Gpu, precisions: &[Precision]) -> Result<Value> {
    let copy = copy_bandwidth(gpu)?;
    say!("ceilings: device-to-device copy {copy:.0} GB/s (read + write)");
    let blas = Cublas::new(gpu)?;
    let mut gemm = serde_json::Map::new();
    for &p in precisions {
        let ours = gemm_rate(gpu, p, PEAK_GEMM)?;
        let theirs = match &blas {
            Some(b) => Some(cublas_rate(gpu, b, p, PEAK_GEMM, PEAK_GEMM, PEAK_GEMM)?),
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

fn time_launches(gpu: &Gpu, launch: impl Fn() -> Result<()>) -> Result<f64> {
    time_repeated(gpu, LAUNCHES_PER_GRAPH, launch)
}

fn operands(
    gpu: &Gpu,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(DeviceBuffer<f32>, DeviceBuffer<f32>, DeviceBuffer<f32>)> {
    let fill = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    Ok((
        DeviceBuffer::from_host(&gpu.stream, &fill(m * k))?,
        DeviceBuffer::from_host(&gpu.stream, &fill(k * n))?,
        DeviceBuffer::zeros(&gpu.stream, m * n)?,
    ))
}

fn cublas_ms(gpu: &Gpu, blas: &Cublas, p: Precision, m: usize, n: usize, k: usize) -> Result<f64> {
    let (x, w, y) = operands(gpu, m, n, k)?;
    if p == Precision::Bf16 {
        let xs = x.download(&gpu.stream, m * k)?;
        let ws = w.download(&gpu.stream, k * n)?;
        let (x16, w16) = (to_bf16(gpu, &xs)?, to_bf16(gpu, &ws)?);
        time_launches(gpu, || blas.gemm(p, x16.ptr(), w16.ptr(), y.ptr(), m, n, k))
    } else {
        time_launches(gpu, || blas.gemm(p, x.ptr(), w.ptr(), y.ptr(), m, n, k))
    }
}

fn cublas_rate(
    gpu: &Gpu,
    blas: &Cublas,
    p: Precision,
    m: usize,
    n: usize,
    k: usize,
) -> Result<f64> {
    Ok(2.0 * (m * n * k) as f64 / (cublas_ms(gpu, blas, p, m, n, k)? * 1e-3) / 1e12)
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
                let (n, k) = (l.fan_out, l.fan_in);
                let (x, w, y) = operands(gpu, m, n, k)?;
                let b = DeviceBuffer::<f32>::zeros(&gpu.stream, n)?;
                // Split-K scratch, as the model gives it (small M splits over k).
                let plan = SplitPlan::for_forward(m, n, k, gpu.kernels.sm_count());
                let work = DeviceBuffer::<f32>::zeros(&gpu.stream, plan.partial_len(m * n))?;
                let op = Op::GemmFwd {
                    p,
                    x: x.ptr(),
                    w: w.ptr(),
                    b: b.ptr(),
                    y: y.ptr(),
                    work: work.ptr(),
                    m,
                    n,
                    k,
                    act: Activation::Relu,
                };
                let ours = time_launches(gpu, || op.launch(&gpu.kernels, &gpu.stream))?;
                let theirs = cublas_ms(gpu, &blas, p, m, n, k)?;
                say!(
                    "{:<6}{:>22} {ours:>10.4} {theirs:>10.4} {:>7.2}x",
                    p.name(),
                    format!("{m}×{n}×{k}"),
                    ours / theirs
                );
                rows.push(json!({"precision": p.name(), "m": m, "n": n, "k": k, "dae_ms": ours, "cublas_ms": theirs, "ratio": ours / theirs}));
            }
        }
    }
    Ok(Value::Array(rows))
}

/// Per-kernel time of one train step, its rates and fraction of the ceilings.
pub fn breakdown(
    arch: &Architecture,
    train: &Dataset,
    batch: usize,
    p: Precision,
    peaks: &Value,
) -> Result<Value> {
    let cfg = TrainConfig {
        batch,
        precision: p.name().into(),
        ..TrainConfig::lab()
    };
    let mut backend = CudaBackend::new(
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
