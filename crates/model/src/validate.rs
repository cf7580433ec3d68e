//! What a checkpoint must hold to be trusted (issue 10): finite tensors,
//! settings the optimizer can run with, a history consistent with itself.
//! Each error names the field, so the caller's context can name the file.

use crate::error::fail;
use crate::Result;
use crate::{Architecture, History, TrainConfig, TrainState};

/// The first non-finite value of `v` and its index.
pub fn first_non_finite(v: &[f32]) -> Option<(usize, f32)> {
    v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i]))
}

/// Every optimizer setting within the range Adam is defined on.
pub fn check_config(c: &TrainConfig) -> Result<()> {
    let field = |name: &str, v: f64, ok: bool, range: &str| -> Result<()> {
        if !ok {
            fail!(Checkpoint, "metadata 'training': {name} {v} is not {range}");
        }
        Ok(())
    };
    field(
        "lr",
        c.lr,
        c.lr.is_finite() && c.lr > 0.0,
        "a positive number",
    )?;
    field("beta1", c.beta1, (0.0..1.0).contains(&c.beta1), "in [0, 1)")?;
    field("beta2", c.beta2, (0.0..1.0).contains(&c.beta2), "in [0, 1)")?;
    field(
        "epsilon",
        c.epsilon,
        c.epsilon.is_finite() && c.epsilon > 0.0,
        "a positive number",
    )?;
    field(
        "final_lr",
        c.final_lr,
        (0.0..=1.0).contains(&c.final_lr),
        "in [0, 1]",
    )?;
    if let dae_core::schedule::Warmup::Epochs(e) = c.warmup {
        field("warmup epochs", e, e.is_finite() && e >= 0.0, "≥ 0")?;
    }
    if let Some(t) = c.target_val_loss {
        field(
            "target_val_loss",
            t,
            t.is_finite() && t > 0.0,
            "a positive number",
        )?;
    }
    field(
        "weight_decay",
        c.weight_decay,
        c.weight_decay.is_finite() && c.weight_decay >= 0.0,
        "a non-negative number",
    )?;
    if c.epochs == 0 {
        fail!(Checkpoint, "metadata 'training': epochs must be at least 1");
    }
    if c.batch == 0 {
        fail!(Checkpoint, "metadata 'training': batch must be at least 1");
    }
    if c.accumulate == 0 {
        fail!(
            Checkpoint,
            "metadata 'training': accumulate must be at least 1"
        );
    }
    Ok(())
}

/// Loss and val_loss of equal length, finite, no longer than the settings'
/// epochs, and matching the 'epoch' entry and the step count.
pub fn check_history(h: &History, c: &TrainConfig, epoch: Option<&str>, step: u64) -> Result<()> {
    if h.loss.len() != h.val_loss.len() {
        fail!(
            Checkpoint,
            "metadata 'history': {} losses but {} validation losses",
            h.loss.len(),
            h.val_loss.len()
        );
    }
    if let Some(i) = h.lr.iter().position(|v| !v.is_finite()) {
        fail!(
            Checkpoint,
            "metadata 'history': lr of step {} is {}",
            i + 1,
            h.lr[i]
        );
    }
    for (name, values) in [("loss", &h.loss), ("val_loss", &h.val_loss)] {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            fail!(
                Checkpoint,
                "metadata 'history': {name} of epoch {} is {}",
                i + 1,
                values[i]
            );
        }
    }
    if h.loss.len() > c.epochs {
        fail!(
            Checkpoint,
            "metadata 'history': {} epochs recorded but the settings train {}",
            h.loss.len(),
            c.epochs
        );
    }
    if let Some(e) = epoch {
        if e.parse::<usize>().ok() != Some(h.loss.len()) {
            fail!(
                Checkpoint,
                "metadata 'epoch' {e:?} disagrees with the history's {} epochs",
                h.loss.len()
            );
        }
    }
    // Every epoch takes at least one step.
    if step < h.loss.len() as u64 {
        fail!(
            Checkpoint,
            "metadata 'step' {step} is fewer than the {} epochs recorded",
            h.loss.len()
        );
    }
    Ok(())
}

/// Parameters and both moments finite, the second moment non-negative;
/// the error names the layer tensor (or moment) and the index in it.
pub fn check_state(arch: &Architecture, s: &TrainState) -> Result<()> {
    let locate = |i: usize| -> String {
        for l in arch.layers() {
            if i < l.bias_offset {
                return format!("{}.kernel[{}]", l.name, i - l.weight_offset);
            }
            if i < l.bias_offset + l.fan_out {
                return format!("{}.bias[{}]", l.name, i - l.bias_offset);
            }
        }
        format!("[{i}]")
    };
    if let Some((i, v)) = first_non_finite(&s.params) {
        fail!(Checkpoint, "tensor '{}' is {v}", locate(i));
    }
    for (name, values) in [("optimizer.m", &s.m), ("optimizer.v", &s.v)] {
        if let Some((i, v)) = first_non_finite(values) {
            fail!(Checkpoint, "tensor '{name}' is {v} at index {i}");
        }
    }
    if let Some(i) = s.v.iter().position(|&v| v < 0.0) {
        fail!(
            Checkpoint,
            "tensor 'optimizer.v' is {} at index {i} (Adam's second moment is never negative)",
            s.v[i]
        );
    }
    Ok(())
}
