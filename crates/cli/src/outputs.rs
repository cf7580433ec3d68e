//! Model outputs checked before they are reported or written: finite
//! weights can still overflow on some data, and a NaN loss or code must be
//! an error, not a number printed with exit 0 or `null` in JSON.

use anyhow::{bail, Result};
use std::path::Path;

/// Fails when any of `values` (the model's `what` for `checkpoint`) is
/// not finite.
pub fn ensure_finite(checkpoint: &Path, what: &str, values: &[f32]) -> Result<()> {
    if let Some((i, v)) = dae_model::validate::first_non_finite(values) {
        bail!(
            "{}: the model's {what} include a non-finite value ({v} at flat index {i}); \
             its weights overflow on this data",
            checkpoint.display()
        );
    }
    Ok(())
}

/// The same for a loss.
pub fn ensure_finite_loss(checkpoint: &Path, what: &str, loss: f64) -> Result<()> {
    if !loss.is_finite() {
        bail!(
            "{}: the model's {what} is non-finite ({loss}); its weights overflow on this data",
            checkpoint.display()
        );
    }
    Ok(())
}
