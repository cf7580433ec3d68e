//! The launches of one LAMB step (kernels/lamb.cu): the tensor table the
//! kernels read from device memory, the scratch they need, and the three
//! launches, as pure functions of the tensors and the SM count.

use super::plan::{Arg, Launch};
use crate::lamb::{check_tensors, LambTensor};
use crate::schedule::ScheduleArgs;
use crate::AdamConfig;
use anyhow::{bail, Result};

/// Elements per chunk (kernels/lamb.cu LAMB_CHUNK): one block's share of
/// the elementwise work and one partial sum of each norm.
pub const LAMB_CHUNK: usize = 4096;
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

fn int(v: usize) -> Result<Arg> {
    match i32::try_from(v) {
        Ok(v) => Ok(Arg::I32(v)),
        Err(_) => bail!("LAMB: size {v} exceeds the kernels' int range"),
    }
}

fn grid(work: usize, sm_count: usize) -> (u32, u32, u32) {
    (work.clamp(1, BLOCKS_PER_SM * sm_count.max(1)) as u32, 1, 1)
}

/// lamb_moments, lamb_trust_ratio, lamb_apply for one step with the
/// hyper-parameters of `cfg` (its `lr` unused: the rate is the schedule's,
/// evaluated on the device) and the schedule `lr`.
pub fn lamb_launches(
    b: &LambBuffers,
    table: &LambTable,
    cfg: &AdamConfig,
    lr: &ScheduleArgs,
    sm_count: usize,
) -> Result<Vec<Launch>> {
    let (tensors, chunks) = (int(table.tensors)?, int(table.chunks)?);
    let block = (LAMB_THREADS, 1, 1);
    Ok(vec![
        Launch {
            kernel: "lamb_moments",
            grid: grid(table.chunks, sm_count),
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
            kernel: "lamb_trust_ratio",
            grid: grid(table.tensors, sm_count),
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
            kernel: "lamb_apply",
            grid: grid(table.chunks, sm_count),
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

#[cfg(test)]
mod tests {
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
        let l = lamb_launches(&b, &table, &AdamConfig::default(), &lr, 2).unwrap();
        assert_eq!(l.iter().map(|l| l.grid.0).collect::<Vec<_>>(), [16, 1, 16]);
        let l = lamb_launches(&b, &table, &AdamConfig::default(), &lr, 132).unwrap();
        assert_eq!(
            l.iter().map(|l| l.grid.0).collect::<Vec<_>>(),
            [101, 1, 101]
        );
        assert!(l.iter().all(|l| l.block == (256, 1, 1)));
    }
}
