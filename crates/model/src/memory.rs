//! What a training run needs in memory, so it can be refused up front.

use crate::Architecture;
use anyhow::{anyhow, Result};

/// Bytes a run needs on its device.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// Parameters and their gradients (f32).
    pub params: usize,
    /// Adam's two moments (f32).
    pub optimizer: usize,
    /// Every layer's output, the input batch and the two gradient buffers for one batch.
    pub activations: usize,
    /// The datasets as held (u8 or f32), train and validation.
    pub dataset: usize,
}

impl MemoryPlan {
    /// The plan for `batch` rows; an error when a size overflows (the
    /// architecture's own sizes cannot, `Architecture::new` bounds them, but
    /// the batch and dataset come from flags and files).
    pub fn new(arch: &Architecture, batch: usize, dataset_bytes: usize) -> Result<Self> {
        let p = arch.param_count();
        let widths = arch.widths();
        let outputs: usize = widths.iter().sum();
        let per_row = outputs + 2 * arch.max_width();
        let overflow = || {
            anyhow!(
                "memory plan: batch {batch} of {} overflows",
                arch.describe()
            )
        };
        let activations = batch
            .checked_mul(per_row)
            .and_then(|v| v.checked_mul(4))
            .ok_or_else(overflow)?;
        let plan = MemoryPlan {
            params: 2 * p * 4,
            optimizer: 2 * p * 4,
            activations,
            dataset: dataset_bytes,
        };
        plan.checked_total().ok_or_else(overflow)?;
        Ok(plan)
    }

    fn checked_total(&self) -> Option<usize> {
        self.params
            .checked_add(self.optimizer)?
            .checked_add(self.activations)?
            .checked_add(self.dataset)
    }

    pub fn total(&self) -> usize {
        self.checked_total().unwrap_or(usize::MAX)
    }

    pub fn describe(&self) -> String {
        format!(
            "memory needed: {} in all = parameters+gradients {}, Adam moments {}, activations per batch {}, dataset {}",
            human_bytes(self.total()),
            human_bytes(self.params),
            human_bytes(self.optimizer),
            human_bytes(self.activations),
            human_bytes(self.dataset)
        )
    }
}

pub fn human_bytes(b: usize) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / 1024f64.powi(3))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024f64.powi(2))
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// Memory the OS says is available (Linux /proc/meminfo), if known.
pub fn host_available_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_plan() {
        let a = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let plan = MemoryPlan::new(&a, 256, 47_040_000).unwrap();
        assert_eq!(plan.params, 222_384 * 8);
        assert_eq!(plan.optimizer, 222_384 * 8);
        assert_eq!(
            plan.activations,
            256 * (784 * 2 + 128 * 2 + 64 * 2 + 32 + 2 * 784) * 4
        );
        assert!(plan.describe().contains("MiB"));
        assert!(MemoryPlan::new(&a, usize::MAX / 8, 0).is_err());
        assert!(MemoryPlan::new(&a, 1, usize::MAX).is_err());
    }
}
