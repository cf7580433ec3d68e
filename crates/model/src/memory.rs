//! What a training run needs in memory, so it can be refused up front.

use crate::Architecture;

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
    pub fn new(arch: &Architecture, batch: usize, dataset_bytes: usize) -> Self {
        let p = arch.param_count();
        let widths = arch.widths();
        let outputs: usize = widths.iter().sum();
        let per_row = outputs + 2 * arch.max_width();
        MemoryPlan {
            params: 2 * p * 4,
            optimizer: 2 * p * 4,
            activations: batch * per_row * 4,
            dataset: dataset_bytes,
        }
    }

    pub fn total(&self) -> usize {
        self.params + self.optimizer + self.activations + self.dataset
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
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_plan() {
        let a = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let plan = MemoryPlan::new(&a, 256, 47_040_000);
        assert_eq!(plan.params, 222_384 * 8);
        assert_eq!(plan.optimizer, 222_384 * 8);
        assert_eq!(
            plan.activations,
            256 * (784 * 2 + 128 * 2 + 64 * 2 + 32 + 2 * 784) * 4
        );
        assert!(plan.describe().contains("MiB"));
    }
}
