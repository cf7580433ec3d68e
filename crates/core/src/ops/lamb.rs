//! kernels/lamb.cu: one LAMB step (You et al., ICLR 2020).
//!
//! The tensors LAMB computes its trust ratios over (issue 12): slices of the
//! flat parameter buffer, one per weight matrix and one per bias vector.
//!
//! One trust ratio per tensor, weights and bias separately, as the paper's
//! per-layer ratio is applied in practice (NVIDIA's FusedLAMB, TensorFlow
//! Addons' LAMB: per variable): a bias's norm is unrelated to its matrix's,
//! and mixing them lets the larger one set the step for both. `decay`
//! chooses whether the weight decay term enters the tensor's update
//! (commonly off for biases).

use super::launch::{int, Arg, Launch};
use super::{host, Kernel};
use crate::schedule::{LrSchedule, ScheduleArgs};
use crate::{cpu, fail, AdamConfig, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LambTensor {
    /// First element in the flat parameter buffer.
    pub offset: usize,
    /// Elements (≥ 1).
    pub len: usize,
    /// Whether the weight decay term applies to this tensor.
    pub decay: bool,
}

/// The kernels index with `int` and step a chunk of 4096 past an index:
/// every tensor must end this far below `i32::MAX`.
const INDEX_HEADROOM: usize = 1 << 13;

/// Checks that the tensors are non-empty, in ascending order, disjoint and
/// inside a buffer of `n` elements (gaps are allowed: they are not updated).
pub fn check_tensors(tensors: &[LambTensor], n: usize) -> Result<()> {
    if tensors.is_empty() {
        fail!(Input, "LAMB: no tensors to update");
    }
    let limit = (i32::MAX as usize - INDEX_HEADROOM).min(n);
    let mut end = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        if t.len == 0 {
            fail!(
                Input,
                "LAMB: tensor {i} (offset {}) has no elements",
                t.offset
            );
        }
        if t.offset < end {
            fail!(
                Input,
                "LAMB: tensor {i} starts at {} inside the previous one (ends at {end}); tensors must be ascending and disjoint",
                t.offset
            );
        }
        end = match t.offset.checked_add(t.len) {
            Some(e) if e <= limit => e,
            _ => fail!(
                Input,
                "LAMB: tensor {i} ({} elements at {}) ends past the {limit} elements the buffer (and the kernels' int indices) allow",
                t.len,
                t.offset
            ),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(offset: usize, len: usize) -> LambTensor {
        LambTensor {
            offset,
            len,
            decay: true,
        }
    }

    #[test]
    fn tables_are_checked() {
        assert!(check_tensors(&[t(0, 6), t(6, 2), t(10, 1)], 11).is_ok());
        let err = |v: &[LambTensor], n| check_tensors(v, n).unwrap_err().to_string();
        assert!(err(&[], 5).contains("no tensors"));
        assert!(err(&[t(0, 0)], 5).contains("no elements"));
        assert!(err(&[t(0, 4), t(3, 1)], 5).contains("ascending and disjoint"));
        assert!(err(&[t(0, 6)], 5).contains("ends past the 5"));
        assert!(err(&[t(usize::MAX, 2)], usize::MAX).contains("ends past"));
        assert!(err(&[t(0, i32::MAX as usize)], usize::MAX).contains("int indices"));
    }
}

// The launches of one LAMB step (kernels/lamb.cu): the tensor table the
// kernels read from device memory, the scratch they need, and the three
// launches, as pure functions of the tensors and the SM count.

/// Elements per chunk (kernels/lamb.cu LAMB_CHUNK): one block's share of
/// the elementwise work and one partial sum of each norm.
pub const LAMB_CHUNK: usize = 4096;
pub const LAMB_MOMENTS: &str = "lamb_moments";
pub const LAMB_TRUST_RATIO: &str = "lamb_trust_ratio";
pub const LAMB_APPLY: &str = "lamb_apply";
/// Threads per block (kernels/lamb.cu LAMB_THREADS, exactly).
pub const LAMB_THREADS: u32 = 256;
/// Blocks per SM the plan launches at most (grid-stride beyond).
const BLOCKS_PER_SM: usize = 8;

/// The kernels' tensor table: `words` goes to device memory as i32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambTable {
    pub tensors: usize,
    pub chunks: usize,
    /// T records {offset, len, first_chunk, decay}, then chunk_tensor[C].
    pub words: Vec<i32>,
}

impl LambTable {
    /// The table of `tensors` (checked: non-empty, ascending, disjoint,
    /// inside `n` elements).
    pub fn new(tensors: &[LambTensor], n: usize) -> Result<Self> {
        check_tensors(tensors, n)?;
        let chunks: usize = tensors.iter().map(|t| t.len.div_ceil(LAMB_CHUNK)).sum();
        let mut words = Vec::with_capacity(4 * tensors.len() + chunks);
        let mut first = 0usize;
        // check_tensors bounds every offset + len by i32::MAX: exact casts.
        for t in tensors {
            words.extend([t.offset as i32, t.len as i32, first as i32, t.decay as i32]);
            first += t.len.div_ceil(LAMB_CHUNK);
        }
        for (k, t) in tensors.iter().enumerate() {
            words.extend(std::iter::repeat_n(k as i32, t.len.div_ceil(LAMB_CHUNK)));
        }
        Ok(LambTable {
            tensors: tensors.len(),
            chunks,
            words,
        })
    }

    /// f64 scratch elements: 2 partial sums per chunk, then one scale per
    /// tensor (2·C + T).
    pub fn scratch_len(&self) -> usize {
        2 * self.chunks + self.tensors
    }

    /// (tensors, chunks): what the launches need of the table.
    pub fn counts(&self) -> (usize, usize) {
        (self.tensors, self.chunks)
    }
}

/// Device addresses of one LAMB step's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LambBuffers {
    /// f32 × n: the parameters (updated in place).
    pub params: u64,
    /// f32 × n: the gradients; overwritten with the update u.
    pub grads: u64,
    /// f32 × n each: the moments (updated in place).
    pub m: u64,
    pub v: u64,
    /// i32: the 1-based step counter, already incremented for this step.
    pub step: u64,
    /// i32 × table.words.len(): `LambTable::words`.
    pub table: u64,
    /// f64 × table.scratch_len().
    pub scratch: u64,
}

fn grid(work: usize, sm_count: usize) -> (u32, u32, u32) {
    (work.clamp(1, BLOCKS_PER_SM * sm_count.max(1)) as u32, 1, 1)
}

/// lamb_moments, lamb_trust_ratio, lamb_apply for one step over a table
/// of `table_tensors` tensors in `table_chunks` chunks (`LambTable`'s
/// counts), with the hyper-parameters of `cfg` (its `lr` unused: the rate
/// is the schedule's, evaluated on the device) and the schedule `lr`.
pub fn lamb_launches(
    b: &LambBuffers,
    (table_tensors, table_chunks): (usize, usize),
    cfg: &AdamConfig,
    lr: &ScheduleArgs,
    sm_count: usize,
) -> Result<Vec<Launch>> {
    let (tensors, chunks) = (int(table_tensors)?, int(table_chunks)?);
    let block = (LAMB_THREADS, 1, 1);
    Ok(vec![
        Launch {
            kernel: LAMB_MOMENTS,
            grid: grid(table_chunks, sm_count),
            block,
            args: vec![
                Arg::Ptr(b.params),
                Arg::Ptr(b.grads),
                Arg::Ptr(b.m),
                Arg::Ptr(b.v),
                Arg::Ptr(b.table),
                tensors,
                chunks,
                Arg::Ptr(b.step),
                Arg::F32(cfg.beta1),
                Arg::F32(cfg.beta2),
                Arg::F32(cfg.eps),
                Arg::F32(cfg.weight_decay),
                Arg::Ptr(b.scratch),
            ],
        },
        Launch {
            kernel: LAMB_TRUST_RATIO,
            grid: grid(table_tensors, sm_count),
            block,
            args: vec![
                Arg::Ptr(b.table),
                tensors,
                chunks,
                Arg::Ptr(b.step),
                Arg::I32(lr.kind),
                Arg::F32(lr.peak),
                Arg::I32(lr.warmup),
                Arg::I32(lr.total),
                Arg::F32(lr.final_fraction),
                Arg::Ptr(b.scratch),
            ],
        },
        Launch {
            kernel: LAMB_APPLY,
            grid: grid(table_chunks, sm_count),
            block,
            args: vec![
                Arg::Ptr(b.params),
                Arg::Ptr(b.grads),
                Arg::Ptr(b.table),
                tensors,
                chunks,
                Arg::Ptr(b.scratch),
            ],
        },
    ])
}

/// One LAMB step at the step the counter holds, over the table uploaded at
/// `buffers.table` (`LambTable::words`, whose counts `tensors` and `chunks`
/// are).
#[derive(Clone, Debug)]
pub struct LambStep {
    pub buffers: LambBuffers,
    pub tensors: usize,
    pub chunks: usize,
    /// Parameters the tensors cover (for the work estimate).
    pub elements: usize,
    /// β1, β2, ε and the weight decay (its `lr` is the schedule's).
    pub cfg: AdamConfig,
    /// The learning rate of each step.
    pub schedule: LrSchedule,
}

impl LambStep {
    /// The tensors of the table at `buffers.table`, read from host memory.
    ///
    /// # Safety
    /// `buffers.table` must hold `LambTable::words` of `tensors` records.
    unsafe fn host_tensors(&self) -> Vec<LambTensor> {
        let words = std::slice::from_raw_parts(self.buffers.table as *const i32, 4 * self.tensors);
        words
            .chunks_exact(4)
            .map(|r| LambTensor {
                offset: r[0] as usize,
                len: r[1] as usize,
                decay: r[3] != 0,
            })
            .collect()
    }
}

impl Kernel for LambStep {
    fn launches(&self, sm: usize) -> Result<Vec<Launch>> {
        let lr = self.schedule.device_args();
        let counts = (self.tensors, self.chunks);
        lamb_launches(&self.buffers, counts, &self.cfg, &lr, sm)
    }

    /// Per parameter: the moments pass ~14 FLOPs (m, v, the bias-corrected
    /// quotient, sqrt, decay, two squares summed), reading w, g, m, v and
    /// writing g (= u), m, v (28 bytes); the apply pass 2 FLOPs, reading w
    /// and u and writing w (12 bytes). The table, partial sums and trust
    /// ratios are O(chunks): left out.
    fn work(&self) -> (f64, f64) {
        let n = self.elements as f64;
        (16.0 * n, 40.0 * n)
    }

    unsafe fn run_on_host(&self) {
        let tensors = self.host_tensors();
        // Ascending and disjoint (checked when the table was built): the
        // last tensor ends the span updated.
        let n = tensors.last().map_or(0, |t| t.offset + t.len);
        let b = &self.buffers;
        let t = *(b.step as *const i32) as u64;
        let cfg = AdamConfig {
            lr: self.schedule.lr_at(t as u32),
            ..self.cfg
        };
        cpu::lamb_step(
            host(b.params, n),
            host(b.grads, n),
            host(b.m, n),
            host(b.v, n),
            t,
            &cfg,
            &tensors,
        )
        .expect("LAMB table checked when it was built");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn tables_chunk_each_tensor() {
        let t = |offset, len, decay| LambTensor { offset, len, decay };
        let table = LambTable::new(
            &[t(0, 4097, true), t(4097, 1, false), t(5000, 4096, true)],
            9096,
        )
        .unwrap();
        assert_eq!((table.tensors, table.chunks), (3, 4));
        assert_eq!(
            table.words,
            vec![0, 4097, 0, 1, 4097, 1, 2, 0, 5000, 4096, 3, 1, 0, 0, 1, 2]
        );
        assert_eq!(table.scratch_len(), 11);
        assert!(LambTable::new(&[t(0, 10, true)], 9).is_err());
    }

    #[test]
    fn grids_are_capped_by_the_sm_count() {
        let t = LambTensor {
            offset: 0,
            len: 100 * LAMB_CHUNK + 1,
            decay: true,
        };
        let table = LambTable::new(&[t], t.len).unwrap();
        let b = LambBuffers {
            params: 1,
            grads: 2,
            m: 3,
            v: 4,
            step: 5,
            table: 6,
            scratch: 7,
        };
        let lr = crate::schedule::LrSchedule::constant(1e-3)
            .unwrap()
            .device_args();
        let l = lamb_launches(&b, table.counts(), &AdamConfig::default(), &lr, 2).unwrap();
        assert_eq!(l.iter().map(|l| l.grid.0).collect::<Vec<_>>(), [16, 1, 16]);
        let l = lamb_launches(&b, table.counts(), &AdamConfig::default(), &lr, 132).unwrap();
        assert_eq!(
            l.iter().map(|l| l.grid.0).collect::<Vec<_>>(),
            [101, 1, 101]
        );
        assert!(l.iter().all(|l| l.block == (256, 1, 1)));
    }
}
