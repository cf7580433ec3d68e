//! Whole-model checks of the device backend against the CPU backend: one
//! train step (loss, every gradient, the Adam update and both moments) and
//! one epoch (its loss and the validation loss). Each runs twice on fresh
//! device backends and every output is compared bit for bit. `dae check`
//! and the GPU tests run these after the kernel cases, on the GPU;
//! crates/emu's tests run them on the host emulator.

use crate::Result;
use crate::{Architecture, Backend, CpuBackend, DeviceBackend, Silent, TrainState};
use dae_core::check::{Bound, CaseKey, CaseResult, Selection};
use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::AdamConfig;
use dae_core::{KernelDevice, Precision};
use dae_data::Dataset;
use std::time::Instant;

/// Model-level tolerance, normwise: errors compound through six layers, so
/// no per-element bound has a closed form. The first layer's dW sits
/// behind eleven reduced-precision products (six forward, five input
/// gradients, its own), and ReLU units whose sign the rounding flips add to
/// it. Measured relative errors of that dW, lab model, batch 256: tf32
/// 4.7e-3 to 1.2e-2, bf16 1.1e-2 to 3.4e-2 (the kernels on crates/emu, and
/// tools/tc_rounding_chain.py, which rounds the operands of an exact
/// float64 chain); fp32 2e-7. The bounds leave 2.5 to 3 times that for the
/// hardware's own accumulation order.
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

fn model_bound(p: Precision, update: bool) -> Bound {
    if update {
        Bound::normwise(
            update_tolerance(p),
            "normwise; Adam's first step ≈ lr·sign(g) flips with the gradient's rounding".into(),
        )
    } else {
        Bound::normwise(
            model_tolerance(p),
            "normwise; measured through eleven products, ×2.5–3 (gpu_check::model_tolerance)"
                .into(),
        )
    }
}

/// The model's initial weights and first rows for a case group: from the
/// suite seed and the group's name, as the kernel cases' inputs are.
fn group_seed(seed: u64, group: &str) -> u64 {
    Rng::named(seed, Purpose::Test, group).next_u64()
}

/// The lab model with fresh weights from `seed`, for inputs of `dim` values.
fn lab_model(dim: usize, seed: u64) -> Result<(Architecture, TrainState, AdamConfig)> {
    let arch = Architecture::new(dim, vec![128, 64, 32])?;
    let state = TrainState::initialize(&arch, seed);
    Ok((arch, state, AdamConfig::default()))
}

/// The names of one train step's cases, in the order `train_step` gives them.
fn step_names(arch: &Architecture) -> Vec<String> {
    let mut names = vec!["step loss".to_string()];
    for l in arch.layers() {
        names.push(format!("step dW {}", l.name));
        names.push(format!("step db {}", l.name));
    }
    names.extend(["step Adam update", "step Adam m", "step Adam v"].map(String::from));
    names
}

const EPOCH_NAMES: [&str; 2] = ["epoch loss", "epoch val_loss"];

/// The keys of the model-level cases for data of `dim` values: a step at
/// `batch` and an epoch over `epoch_rows` rows at `batch`.
pub fn model_keys(
    dim: usize,
    p: Precision,
    batch: usize,
    epoch_rows: usize,
) -> Result<Vec<CaseKey>> {
    let arch = Architecture::new(dim, vec![128, 64, 32])?;
    let mut keys: Vec<CaseKey> = step_names(&arch)
        .into_iter()
        .map(|n| CaseKey::new("model step", n, p, batch.to_string()))
        .collect();
    keys.extend(
        EPOCH_NAMES.map(|n| CaseKey::new("model epoch", n, p, format!("{epoch_rows}×{batch}"))),
    );
    Ok(keys)
}

/// One train step's results on one device: the batch's mean loss, the
/// gradients, and the state after the Adam step.
struct StepOutcome {
    loss: f64,
    grads: Vec<f32>,
    after: TrainState,
}

impl StepOutcome {
    /// Every output, in `step_names` order, as f64 (the loss's own bits kept).
    fn outputs(&self, arch: &Architecture, before: &TrainState) -> Vec<Vec<f64>> {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let mut out = vec![vec![self.loss]];
        for l in arch.layers() {
            out.push(f(&self.grads[l.weight_offset..l.bias_offset]));
            out.push(f(&self.grads[l.bias_offset..l.bias_offset + l.fan_out]));
        }
        let update: Vec<f32> = self
            .after
            .params
            .iter()
            .zip(&before.params)
            .map(|(a, b)| a - b)
            .collect();
        out.extend([f(&update), f(&self.after.m), f(&self.after.v)]);
        out
    }
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

/// The selected cases of one group from the CPU's outputs and the device's
/// two runs' outputs (each a list of outputs in `keys` order).
fn compare(
    keys: Vec<CaseKey>,
    bounds: impl Fn(&CaseKey) -> Bound,
    want: &[Vec<f64>],
    runs: [&[Vec<f64>]; 2],
    started: Instant,
) -> Vec<CaseResult> {
    keys.into_iter()
        .enumerate()
        .map(|(j, key)| {
            let bound = bounds(&key);
            let got: [&[f64]; 2] = [&runs[0][j], &runs[1][j]];
            let cols = got[0].len();
            CaseResult::from_runs(
                key,
                String::new(),
                bound,
                got,
                &want[j],
                None,
                cols,
                started,
            )
        })
        .collect()
}

/// One train step on `batch` rows of `data`, the device (from `open`)
/// against the CPU, the device run twice.
pub fn train_step<D: KernelDevice>(
    open: impl Fn() -> dae_core::Result<D>,
    data: &Dataset,
    p: Precision,
    batch: usize,
    seed: u64,
    sel: &Selection,
) -> Result<Vec<CaseResult>> {
    let started = Instant::now();
    let rows_in_batch = batch.min(data.rows);
    let keys = model_keys(data.dim, p, batch, 0)?;
    let keys: Vec<CaseKey> = keys
        .into_iter()
        .filter(|k| k.family == "model step")
        .collect();
    if !keys.iter().any(|k| sel.matches(k)) {
        return Ok(Vec::new());
    }
    let model_seed = group_seed(seed, &format!("model step {batch}"));
    let (arch, state, adam) = lab_model(data.dim, model_seed)?;
    let rows = epoch_permutation(model_seed, 0, data.rows)[..rows_in_batch].to_vec();
    let mut cpu = CpuBackend::new(&arch, adam, rows.len(), state.clone())?;
    let want = step_outcome(&mut cpu, data, &rows)?.outputs(&arch, &state);
    let run = || -> Result<Vec<Vec<f64>>> {
        let mut device = DeviceBackend::on(open()?, &arch, adam, p, rows.len(), state.clone())?;
        Ok(step_outcome(&mut device, data, &rows)?.outputs(&arch, &state))
    };
    let runs = [run()?, run()?];
    let results = compare(
        keys,
        |k| model_bound(p, k.name == "step Adam update"),
        &want,
        [&runs[0], &runs[1]],
        started,
    );
    Ok(results
        .into_iter()
        .filter(|r| sel.matches(&r.key))
        .collect())
}

/// One epoch over `data` at `batch`, the device against the CPU, the
/// device run twice: the epoch's loss and the validation loss on
/// `validation`.
pub fn epoch<D: KernelDevice>(
    open: impl Fn() -> dae_core::Result<D>,
    data: &Dataset,
    validation: &Dataset,
    p: Precision,
    batch: usize,
    seed: u64,
    sel: &Selection,
) -> Result<Vec<CaseResult>> {
    let started = Instant::now();
    let keys: Vec<CaseKey> = model_keys(data.dim, p, batch, data.rows)?
        .into_iter()
        .filter(|k| k.family == "model epoch")
        .collect();
    if !keys.iter().any(|k| sel.matches(k)) {
        return Ok(Vec::new());
    }
    let model_seed = group_seed(seed, &format!("model epoch {}×{batch}", data.rows));
    let (arch, state, adam) = lab_model(data.dim, model_seed)?;
    let perm = epoch_permutation(model_seed, 0, data.rows);
    let losses = |backend: &mut dyn Backend| -> Result<Vec<Vec<f64>>> {
        let train = backend.train_epoch(data, &perm, batch, &mut Silent)?;
        let val = backend.evaluate(validation, false)?.loss;
        Ok(vec![vec![train], vec![val]])
    };
    let want = losses(&mut CpuBackend::new(&arch, adam, batch, state.clone())?)?;
    let run = || -> Result<Vec<Vec<f64>>> {
        losses(&mut DeviceBackend::on(
            open()?,
            &arch,
            adam,
            p,
            batch,
            state.clone(),
        )?)
    };
    let runs = [run()?, run()?];
    let results = compare(
        keys,
        |_| model_bound(p, false),
        &want,
        [&runs[0], &runs[1]],
        started,
    );
    Ok(results
        .into_iter()
        .filter(|r| sel.matches(&r.key))
        .collect())
}
