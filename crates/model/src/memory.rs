//! What a training run needs in memory, so it can be refused up front.

use crate::error::err;
use crate::Result;
use crate::{Architecture, Optimizer};

/// Bytes a run needs on its device.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// Parameters and their gradients (f32), with the micro-batch gradient
    /// when steps accumulate (`accumulating`).
    pub params: usize,
    /// The optimizer's two moments (f32), and LAMB's table and scratch.
    pub optimizer: usize,
    /// Every layer's output and output gradient, and the input batch, for one batch.
    pub activations: usize,
    /// The datasets as held (u8 or f32), train and validation.
    pub dataset: usize,
    /// What only the device backend holds: split-K work space, loss
    /// partials, row indices, the epoch's row order, scalars (0 on the CPU).
    pub workspace: usize,
}

impl MemoryPlan {
    /// The plan for `batch` rows; an error when a size overflows (the
    /// architecture's own sizes cannot, `Architecture::new` bounds them, but
    /// the batch and dataset come from flags and files).
    pub fn new(arch: &Architecture, batch: usize, dataset_bytes: usize) -> Result<Self> {
        let p = arch.param_count();
        let widths = arch.widths();
        let outputs: usize = widths.iter().sum();
        // The input, each layer's output and each layer's output gradient.
        let per_row = outputs + (outputs - arch.input_dim);
        let overflow = || {
            err!(
                Settings,
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
            workspace: 0,
        };
        plan.checked_total().ok_or_else(overflow)?;
        Ok(plan)
    }

    /// The CPU backend's plan at `batch`: the device plan on the host
    /// (its data used in place, counted once in `dataset_bytes`).
    pub fn cpu(
        arch: &Architecture,
        optimizer: Optimizer,
        batch: usize,
        train_rows: usize,
        dataset_bytes: usize,
    ) -> Result<Self> {
        let capacity = crate::capacity(true, batch);
        let sms = crate::HOST_SM_COUNT;
        Self::of_buffers(arch, optimizer, capacity, sms, train_rows, dataset_bytes)
    }

    /// A GPU's (or the emulator's) plan at `batch` on `sm_count` SMs.
    pub fn device(
        arch: &Architecture,
        optimizer: Optimizer,
        batch: usize,
        sm_count: usize,
        train_rows: usize,
        dataset_bytes: usize,
    ) -> Result<Self> {
        let capacity = crate::capacity(false, batch);
        Self::of_buffers(
            arch,
            optimizer,
            capacity,
            sm_count,
            train_rows,
            dataset_bytes,
        )
    }

    /// The backend's plan: its activation rows (the batch or an inference
    /// chunk), and every other buffer it allocates on a device of
    /// `sm_count` SMs, with the epoch's order of `train_rows` rows.
    fn of_buffers(
        arch: &Architecture,
        optimizer: Optimizer,
        capacity: usize,
        sm_count: usize,
        train_rows: usize,
        dataset_bytes: usize,
    ) -> Result<Self> {
        let batch = capacity;
        let mut plan = Self::new(arch, capacity, dataset_bytes)?;
        let lamb = crate::optimizer::extra_bytes(optimizer, &arch.layers());
        plan.optimizer = plan.optimizer.saturating_add(lamb);
        let buffers = crate::buffer_bytes(arch, capacity, sm_count, optimizer);
        // The order buffer grows from one row to the epoch's rows.
        let order = train_rows.saturating_sub(1).saturating_mul(4);
        plan.workspace = buffers
            .saturating_sub(plan.params + plan.optimizer + plan.activations)
            .saturating_add(order);
        plan.checked_total()
            .filter(|&t| t < usize::MAX)
            .ok_or_else(|| {
                err!(
                    Settings,
                    "memory plan: batch {batch} of {} overflows",
                    arch.describe()
                )
            })?;
        Ok(plan)
    }

    /// The plan with the scratch gradient of `micro_batches` micro-batches
    /// per step (`--accumulate`; nothing for one).
    pub fn accumulating(mut self, arch: &Architecture, micro_batches: usize) -> Self {
        self.params = self
            .params
            .saturating_add(crate::accumulation_bytes(arch, micro_batches));
        self
    }

    fn checked_total(&self) -> Option<usize> {
        self.params
            .checked_add(self.optimizer)?
            .checked_add(self.activations)?
            .checked_add(self.dataset)?
            .checked_add(self.workspace)
    }

    pub fn total(&self) -> usize {
        self.checked_total().unwrap_or(usize::MAX)
    }

    pub fn describe(&self) -> String {
        format!(
            "memory needed: {} in all = parameters+gradients {}, optimizer state {}, activations per batch {}, dataset {}{}",
            human_bytes(self.total()),
            human_bytes(self.params),
            human_bytes(self.optimizer),
            human_bytes(self.activations),
            human_bytes(self.dataset),
            if self.workspace > 0 {
                format!(", work space and indices {}", human_bytes(self.workspace))
            } else {
                String::new()
            }
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

/// What bounds this process's memory on the host: the smallest of the
/// memory the OS has available, the address-space limit (`ulimit -v`, less
/// what the process already maps) and the cgroup's limit (less its usage),
/// with which one it is; None when none is known.
pub fn host_memory_limit() -> Option<(usize, &'static str)> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let candidates = [
        (host_available_bytes(), "available memory"),
        (
            read("/proc/self/limits").and_then(|l| {
                let vm = read("/proc/self/status").and_then(|s| status_kib(&s, "VmSize:"));
                address_space_left(&l, vm.unwrap_or(0))
            }),
            "the address-space limit (ulimit -v)",
        ),
        (cgroup_left(read), "the cgroup memory limit"),
    ];
    candidates
        .into_iter()
        .filter_map(|(v, what)| v.map(|v| (v, what)))
        .min_by_key(|&(v, _)| v)
}

/// `Max address space` of /proc/self/limits, less `mapped` bytes.
fn address_space_left(limits: &str, mapped: usize) -> Option<usize> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line.split_whitespace().nth(3)?;
    let limit: usize = soft.parse().ok()?; // "unlimited" does not parse
    Some(limit.saturating_sub(mapped))
}

/// A `Name:  N kB` line of /proc/self/status, in bytes.
fn status_kib(status: &str, key: &str) -> Option<usize> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<usize>()
        .ok()?
        .checked_mul(1024)
}

/// The cgroup's limit less its usage: v2 (memory.max, memory.current) or
/// v1 (memory.limit_in_bytes, memory.usage_in_bytes).
fn cgroup_left(read: impl Fn(&str) -> Option<String>) -> Option<usize> {
    let num = |p: &str| read(p)?.trim().parse::<usize>().ok();
    let (limit, used) = match num("/sys/fs/cgroup/memory.max") {
        Some(l) => (l, num("/sys/fs/cgroup/memory.current").unwrap_or(0)),
        None => (
            num("/sys/fs/cgroup/memory/memory.limit_in_bytes")?,
            num("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0),
        ),
    };
    Some(limit.saturating_sub(used))
}

/// Memory the OS says is available (Linux /proc/meminfo), if known.
fn host_available_bytes() -> Option<usize> {
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
            256 * (784 * 2 + 128 * 2 + 64 * 2 + 32 + (784 + 128 * 2 + 64 * 2 + 32)) * 4
        );
        assert!(plan.describe().contains("MiB"));
        assert!(MemoryPlan::new(&a, usize::MAX / 8, 0).is_err());
        assert!(MemoryPlan::new(&a, 1, usize::MAX).is_err());
    }

    #[test]
    fn limits_are_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         3000000000           unlimited            bytes\n";
        assert_eq!(
            address_space_left(limits, 1_000_000_000),
            Some(2_000_000_000)
        );
        let unlimited =
            "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_left(unlimited, 0), None);
        assert_eq!(status_kib("VmSize:\t  2048 kB\n", "VmSize:"), Some(2 << 20));
        let v2 = |p: &str| match p {
            "/sys/fs/cgroup/memory.max" => Some("1073741824\n".to_string()),
            "/sys/fs/cgroup/memory.current" => Some("73741824\n".to_string()),
            _ => None,
        };
        assert_eq!(cgroup_left(v2), Some(1_000_000_000));
        let v2_max = |p: &str| (p == "/sys/fs/cgroup/memory.max").then(|| "max\n".to_string());
        assert_eq!(cgroup_left(v2_max), None);
        assert!(host_memory_limit().is_none_or(|(v, _)| v > 0));
    }
}
