//! Whole-model checks of the device backend against the CPU backend: one
//! train step (loss, every gradient, every updated weight) and one epoch
//! (its loss). `dae check` and the GPU tests run these after the kernel
//! cases, on the GPU; crates/emu's tests run them on the host emulator.

use crate::{Architecture, Backend, CpuBackend, DeviceBackend, StepObserver, TrainState};
use anyhow::Result;
use dae_core::cuda::check::CaseResult;
use dae_core::cuda::{KernelDevice, Precision};
use dae_core::reference::relative_error;
use dae_core::rng::epoch_permutation;
use dae_core::AdamConfig;
use dae_data::Dataset;

struct Silent;
impl StepObserver for Silent {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
}

/// Model-level tolerance: errors compound through six layers. The first
/// layer's dW sits behind eleven reduced-precision products (six forward,
/// five input gradients, its own), and ReLU units whose sign the rounding
/// flips add to it. Measured relative errors of that dW, lab model, batch
/// 256: tf32 4.7e-3 to 1.2e-2, bf16 1.1e-2 to 3.4e-2 (the kernels on
/// crates/emu, and tools/tc_rounding_chain.py, which rounds the operands
/// of an exact float64 chain); fp32 2e-7. The bounds leave 2.5 to 3 times
/// that for the hardware's own accumulation order.
pub fn model_tolerance(p: Precision) -> f64 {
    match p {
        Precision::Fp32 => 1e-4,
        Precision::Tf32 => 3e-2,
        Precision::Bf16 => 1e-1,
    }
}

/// Adam's first step is ≈ lr·sign(g): a gradient near zero whose sign the
/// operand rounding flips moves by 2·lr, so the update is compared with a
/// looser bound in reduced precision (fp32 gradients are exact enough).
fn update_tolerance(p: Precision) -> f64 {
    match p {
        Precision::Fp32 => 1e-4,
        Precision::Tf32 => 0.05,
        Precision::Bf16 => 0.25,
    }
}

fn case(kernel: String, p: Precision, shape: String, got: &[f32], want: &[f32]) -> CaseResult {
    let want64: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    CaseResult {
        kernel,
        precision: p.name(),
        shape,
        rel_error: relative_error(got, &want64),
        tolerance: model_tolerance(p),
        deterministic: true,
    }
}

/// The lab model with fresh weights from `seed`, for inputs of `dim` values.
fn lab_model(dim: usize, seed: u64) -> Result<(Architecture, TrainState, AdamConfig)> {
    let arch = Architecture::new(dim, vec![128, 64, 32])?;
    let state = TrainState::initialize(&arch, seed);
    Ok((arch, state, AdamConfig::default()))
}

/// One train step's results on one device: the batch's mean loss, the
/// gradients, and the state after the Adam step.
struct StepOutcome {
    loss: f64,
    grads: Vec<f32>,
    after: TrainState,
}

/// The step on `backend`: loss and gradients, then one Adam step over the
/// same rows.
fn step_outcome(backend: &mut dyn Backend, data: &Dataset, rows: &[u32]) -> Result<StepOutcome> {
    let (loss, grads) = backend.loss_and_gradients(data, rows)?;
    backend.train_epoch(data, rows, rows.len(), &mut Silent)?;
    Ok(StepOutcome {
        loss,
        grads,
        after: backend.state()?,
    })
}

/// The lab model with fresh weights from `seed` for `data`, and the rows of
/// its first batch of `batch` (the epoch-0 permutation's head).
fn lab_step_setup(
    data: &Dataset,
    batch: usize,
    seed: u64,
) -> Result<(Architecture, TrainState, AdamConfig, Vec<u32>)> {
    let (arch, state, adam) = lab_model(data.dim, seed)?;
    let rows = epoch_permutation(seed, 0, data.rows)[..batch.min(data.rows)].to_vec();
    Ok((arch, state, adam, rows))
}

/// `got` against the CPU's `want` for a step from `before`: the loss, every
/// layer's dW and db, the Adam update of every weight and both moments.
fn compare_step(
    arch: &Architecture,
    p: Precision,
    shape: &str,
    before: &TrainState,
    want: &StepOutcome,
    got: &StepOutcome,
) -> Vec<CaseResult> {
    let shape = shape.to_string();
    let mut out = vec![case(
        "step loss".into(),
        p,
        shape.clone(),
        &[got.loss as f32],
        &[want.loss as f32],
    )];
    for l in arch.layers() {
        let w = l.weight_offset..l.bias_offset;
        let b = l.bias_offset..l.bias_offset + l.fan_out;
        out.push(case(
            format!("step dW {}", l.name),
            p,
            shape.clone(),
            &got.grads[w.clone()],
            &want.grads[w],
        ));
        out.push(case(
            format!("step db {}", l.name),
            p,
            shape.clone(),
            &got.grads[b.clone()],
            &want.grads[b],
        ));
    }
    let du = |s: &TrainState| -> Vec<f32> {
        s.params
            .iter()
            .zip(&before.params)
            .map(|(a, b)| a - b)
            .collect()
    };
    let mut update = case(
        "step Adam update (all weights)".into(),
        p,
        shape.clone(),
        &du(&got.after),
        &du(&want.after),
    );
    update.tolerance = update_tolerance(p);
    out.push(update);
    out.push(case(
        "step Adam m".into(),
        p,
        shape.clone(),
        &got.after.m,
        &want.after.m,
    ));
    out.push(case(
        "step Adam v".into(),
        p,
        shape,
        &got.after.v,
        &want.after.v,
    ));
    out
}

/// One train step on `batch` rows of `data`, the device (from `open`)
/// against the CPU.
pub fn train_step<D: KernelDevice>(
    open: impl Fn() -> Result<D>,
    data: &Dataset,
    p: Precision,
    batch: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let (arch, state, adam, rows) = lab_step_setup(data, batch, seed)?;
    let mut cpu = CpuBackend::new(&arch, adam, state.clone())?;
    let mut device = DeviceBackend::on(open()?, &arch, adam, p, rows.len(), state.clone())?;
    let want = step_outcome(&mut cpu, data, &rows)?;
    let got = step_outcome(&mut device, data, &rows)?;
    let shape = format!("{} rows, {}", rows.len(), arch.describe());
    Ok(compare_step(&arch, p, &shape, &state, &want, &got))
}

/// One epoch over `data` at `batch`, GPU against CPU: the epoch's loss and
/// the validation loss on `validation`.
pub fn epoch<D: KernelDevice>(
    open: impl Fn() -> Result<D>,
    data: &Dataset,
    validation: &Dataset,
    p: Precision,
    batch: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let (arch, state, adam) = lab_model(data.dim, seed)?;
    let perm = epoch_permutation(seed, 0, data.rows);
    let mut cpu = CpuBackend::new(&arch, adam, state.clone())?;
    let mut device = DeviceBackend::on(open()?, &arch, adam, p, batch, state)?;
    let cl = cpu.train_epoch(data, &perm, batch, &mut Silent)?;
    let gl = device.train_epoch(data, &perm, batch, &mut Silent)?;
    let cv = cpu.evaluate(validation, false)?.loss;
    let gv = device.evaluate(validation, false)?.loss;
    let shape = format!("{} rows, batch {batch}", data.rows);
    Ok(vec![
        case(
            "epoch loss".into(),
            p,
            shape.clone(),
            &[gl as f32],
            &[cl as f32],
        ),
        case(
            "epoch val_loss".into(),
            p,
            shape,
            &[gv as f32],
            &[cv as f32],
        ),
    ])
}
