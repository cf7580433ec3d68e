//! The training step, written once: gather, forward, loss, backward (once
//! per micro-batch when gradients are accumulated), the optimizer update
//! and the batch offset, as a list of ops over buffer addresses. Every device runs this one definition: the GPU records it as
//! a CUDA graph, the emulator runs its kernels on the host, the CPU executes
//! its ops with the CPU kernels on host memory (`DeviceBackend`).

use crate::{Layer, Optimizer};
use dae_core::ops::lamb::{LambBuffers, LambStep};
use dae_core::ops::{
    AccumulateAdd, AdamStep, Bce, BiasGrad, Forward, Gather, InputGrad, NamedOp, Offset,
    OffsetAdvance, Op, SplitPlan, StepIncrement, WeightGrad,
};
use dae_core::schedule::LrSchedule;
use dae_core::{Activation, AdamConfig, Precision};

/// Addresses of the buffers one step uses.
#[derive(Clone, Debug)]
pub struct StepBuffers {
    /// The batch [rows, input_dim] (also the loss target).
    pub input: u64,
    /// Each layer's output [rows, fan_out]; the last holds logits.
    pub outputs: Vec<u64>,
    /// Each layer's output gradient [rows, fan_out]. One buffer per layer,
    /// not two used in turn: the host's threads run the backward pass with
    /// no barrier between layers, each on its own rows, and a buffer read
    /// at one width while another thread writes it at another would
    /// overlap their rows.
    pub delta: Vec<u64>,
    /// Flat f32 parameters, gradients and Adam moments.
    pub params: u64,
    pub grads: u64,
    /// Where a later micro-batch's gradient goes before it is added into
    /// `grads` (0 when steps are not accumulated).
    pub grads_scratch: u64,
    pub m: u64,
    pub v: u64,
    /// Device-held i32 step counter.
    pub step: u64,
    /// f64 loss sum and the loss kernel's per-block partials.
    pub loss_sum: u64,
    pub loss_partial: u64,
    /// Split-K scratch.
    pub work: u64,
    /// LAMB's table and scratch (None for Adam and AdamW).
    pub lamb: Option<LambTableBuffers>,
}

/// LAMB's tensor table on the device (`LambTable::words`), its counts, and
/// its f64 scratch (`LambTable::scratch_len`).
#[derive(Clone, Copy, Debug)]
pub struct LambTableBuffers {
    pub table: u64,
    pub scratch: u64,
    pub tensors: usize,
    pub chunks: usize,
}

/// Where the batch's rows come from.
#[derive(Clone, Copy, Debug)]
pub struct BatchSource {
    pub u8_data: bool,
    pub data: u64,
    /// Row indices (the epoch's permutation, or an explicit row list).
    pub index: u64,
    pub offset: Offset,
}

/// The model's layers, precision and optimizer: what shapes the ops.
pub struct StepPlan<'a> {
    pub layers: &'a [Layer],
    pub precision: Precision,
    pub adam: AdamConfig,
    /// The learning rate of each step, computed where the update runs.
    pub schedule: LrSchedule,
    /// Adam or AdamW (`adam.weight_decay`): `Op::Adam`; LAMB: `Op::Lamb`
    /// over `StepBuffers::lamb`.
    pub optimizer: Optimizer,
}

/// Split-K scratch needed by every layer's products at up to `rows` rows
/// (0 where nothing splits): dW and db (backward), and the forward and
/// input-gradient products, which split only while their output tiles are
/// fewer than the SMs. The ops of a step use `work` one after another on one
/// stream and none reads what an earlier op left there, so one buffer of the
/// largest need serves them all.
pub fn work_len(layers: &[Layer], rows: usize, sm_count: usize) -> usize {
    let mut len = 0;
    // fwd / dx: tiles ≥ cdiv(m, 64) ≥ SMs once m > 64·(SMs − 1), and then
    // nothing splits; below that every row count is checked exactly (every
    // last partial batch and inference chunk is one of them).
    for m in 1..=rows.min(64 * sm_count) {
        for l in layers {
            let s = l.shape(m);
            let f = SplitPlan::for_forward(s, sm_count);
            let d = SplitPlan::for_input_grad(s, sm_count);
            len = len
                .max(f.partial_len(s.y_len()))
                .max(d.partial_len(s.x_len()));
        }
    }
    for l in layers {
        for m in [rows, rows.div_ceil(2), 1.max(rows / 3)] {
            let w = SplitPlan::for_weight_grad(l.shape(m), sm_count);
            if w.splits > 1 {
                len = len.max(w.splits * l.fan_in * l.fan_out);
            }
            let b = SplitPlan::for_bias_grad(m, l.fan_out, sm_count);
            if b.splits > 1 {
                len = len.max(b.splits * l.fan_out);
            }
        }
        // Upper bound over all m ≤ rows: splits never exceed 2·SMs / tiles.
        let tiles = l.fan_in.div_ceil(64) * l.fan_out.div_ceil(64);
        let bound = (2 * sm_count).div_ceil(tiles).min(rows.div_ceil(32));
        if bound > 1 {
            len = len.max(bound * l.fan_in * l.fan_out);
        }
        let bias_bound = (2 * sm_count)
            .div_ceil(l.fan_out.div_ceil(32))
            .min(rows.div_ceil(32));
        if bias_bound > 1 {
            len = len.max(bias_bound * l.fan_out);
        }
    }
    len
}

/// The micro-batches of a step of `rows` rows: `batch` rows each, in order,
/// the last taking the remainder.
pub fn micro_batches(rows: usize, batch: usize) -> Vec<usize> {
    let batch = batch.max(1);
    let mut sizes = vec![batch; rows / batch];
    if !rows.is_multiple_of(batch) {
        sizes.push(rows % batch);
    }
    sizes
}

/// Address of f32 element `index` of the buffer at `base`.
fn at(base: u64, index: usize) -> u64 {
    base + 4 * index as u64
}

impl StepPlan<'_> {
    /// Forward through the first `layer_count` layers of `b.input`; the
    /// output layer, when included, uses `last` as its activation (identity
    /// in training, where the sigmoid is fused into the loss).
    pub fn forward(
        &self,
        b: &StepBuffers,
        rows: usize,
        layer_count: usize,
        last: Activation,
    ) -> Vec<NamedOp> {
        self.layers[..layer_count]
            .iter()
            .enumerate()
            .map(|(i, l)| NamedOp {
                name: format!("fwd {}", l.name),
                op: Op::GemmFwd(Forward {
                    p: self.precision,
                    x: if i == 0 { b.input } else { b.outputs[i - 1] },
                    w: at(b.params, l.weight_offset),
                    b: at(b.params, l.bias_offset),
                    y: b.outputs[i],
                    work: b.work,
                    shape: l.shape(rows),
                    act: if l.activation == Activation::Sigmoid {
                        last
                    } else {
                        l.activation
                    },
                }),
            })
            .collect()
    }

    /// One training step on `rows` rows: gather, forward, loss (added to
    /// `loss_sum`), backward, and with `update` the Adam step and (for a
    /// device-held offset) advancing it past these rows.
    pub fn train_step(
        &self,
        b: &StepBuffers,
        src: &BatchSource,
        rows: usize,
        update: bool,
    ) -> Vec<NamedOp> {
        self.accumulated_step(b, src, &[rows], update)
    }

    /// One training step over micro-batches of the given sizes, taken in
    /// order from the source: each one's gather, forward, loss (added to
    /// `loss_sum`) and backward; the gradient is the mean over all their
    /// rows (every loss gradient scaled by 1/(rows of the step × dim), the
    /// first micro-batch's gradient written into `grads`, each later one's
    /// into `grads_scratch` and then added, in micro-batch order); with
    /// `update` one Adam step for them all. A device-held offset advances
    /// past each micro-batch.
    pub fn accumulated_step(
        &self,
        b: &StepBuffers,
        src: &BatchSource,
        micro: &[usize],
        update: bool,
    ) -> Vec<NamedOp> {
        let dim = self.layers[0].fan_in;
        let total: usize = micro.iter().sum();
        let grad_scale = 1.0 / (total * dim) as f32;
        let n = self.layers.iter().map(Layer::param_count).sum();
        let mut ops = Vec::new();
        let mut done = 0;
        for (j, &rows) in micro.iter().enumerate() {
            let offset = match src.offset {
                Offset::Value(v) => Offset::Value(v + done),
                device => device,
            };
            let grads = if j == 0 { b.grads } else { b.grads_scratch };
            let src = BatchSource { offset, ..*src };
            ops.extend(self.micro_batch(b, &src, rows, grad_scale, grads));
            if j > 0 {
                ops.push(named(
                    "accumulate gradient",
                    Op::AccumulateAdd(AccumulateAdd {
                        acc: b.grads,
                        add: b.grads_scratch,
                        count: n,
                    }),
                ));
            }
            done += rows;
            // The last micro-batch's advance follows the update (as an
            // unaccumulated step's always has).
            if let (Offset::Device(offset), true) = (src.offset, j + 1 < micro.len()) {
                ops.push(named(
                    "batch offset",
                    Op::OffsetAdvance(OffsetAdvance { offset, rows }),
                ));
            }
        }
        let rows = *micro.last().unwrap_or(&0);
        if update {
            ops.push(named(
                "step counter",
                Op::StepIncrement(StepIncrement { step: b.step }),
            ));
            let name = match self.optimizer {
                Optimizer::Adam => "Adam",
                Optimizer::AdamW => "AdamW",
                Optimizer::Lamb => "LAMB",
            };
            ops.push(named(name, self.update(b, n)));
            if let Offset::Device(offset) = src.offset {
                ops.push(named(
                    "batch offset",
                    Op::OffsetAdvance(OffsetAdvance { offset, rows }),
                ));
            }
        }
        ops
    }

    /// One micro-batch of `rows` rows: gather, forward, loss (its gradient
    /// scaled by `grad_scale`), backward into the gradient buffer `grads`.
    fn micro_batch(
        &self,
        b: &StepBuffers,
        src: &BatchSource,
        rows: usize,
        grad_scale: f32,
        grads: u64,
    ) -> Vec<NamedOp> {
        let p = self.precision;
        let dim = self.layers[0].fan_in;
        let mut ops = vec![named(
            "gather batch",
            Op::Gather(Gather {
                u8_data: src.u8_data,
                data: src.data,
                index: src.index,
                offset: src.offset,
                rows,
                dim,
                out: b.input,
            }),
        )];
        ops.extend(self.forward(b, rows, self.layers.len(), Activation::Identity));
        ops.push(named(
            "sigmoid+BCE",
            Op::Bce(Bce {
                z: *b.outputs.last().unwrap(),
                t: b.input,
                dz: *b.delta.last().unwrap(),
                partial: b.loss_partial,
                accum: b.loss_sum,
                count: rows * dim,
                rows,
                grad_scale,
                weight: 1.0,
            }),
        ));
        for (i, l) in self.layers.iter().enumerate().rev() {
            let dz = b.delta[i];
            let x = if i == 0 { b.input } else { b.outputs[i - 1] };
            let (shape, work) = (l.shape(rows), b.work);
            ops.push(named(
                &format!("dW {}", l.name),
                Op::GemmDw(WeightGrad {
                    p,
                    x,
                    dy: dz,
                    dw: at(grads, l.weight_offset),
                    work,
                    shape,
                }),
            ));
            ops.push(named(
                &format!("db {}", l.name),
                Op::BiasGrad(BiasGrad {
                    dy: dz,
                    db: at(grads, l.bias_offset),
                    work,
                    m: rows,
                    n: l.fan_out,
                }),
            ));
            if i > 0 {
                // dX through Wᵀ, masked by where the previous layer's ReLU was active.
                let (w, mask, dx) = (
                    at(b.params, l.weight_offset),
                    b.outputs[i - 1],
                    b.delta[i - 1],
                );
                ops.push(named(
                    &format!("dX {}", l.name),
                    Op::GemmDx(InputGrad {
                        p,
                        dy: dz,
                        w,
                        mask,
                        dx,
                        work,
                        shape,
                    }),
                ));
            }
        }
        ops
    }
}

impl StepPlan<'_> {
    /// The optimizer's update of the `n` parameters.
    fn update(&self, b: &StepBuffers, n: usize) -> Op {
        match (self.optimizer, b.lamb) {
            (Optimizer::Lamb, Some(l)) => Op::Lamb(LambStep {
                buffers: LambBuffers {
                    params: b.params,
                    grads: b.grads,
                    m: b.m,
                    v: b.v,
                    step: b.step,
                    table: l.table,
                    scratch: l.scratch,
                },
                tensors: l.tensors,
                chunks: l.chunks,
                elements: n,
                cfg: self.adam,
                schedule: self.schedule,
            }),
            (Optimizer::Lamb, None) => {
                unreachable!("a LAMB plan over buffers without LAMB's table")
            }
            (Optimizer::Adam | Optimizer::AdamW, _) => Op::Adam(AdamStep {
                params: b.params,
                grads: b.grads,
                m: b.m,
                v: b.v,
                n,
                step: b.step,
                cfg: self.adam,
                schedule: self.schedule,
            }),
        }
    }
}

fn named(name: &str, op: Op) -> NamedOp {
    NamedOp {
        name: name.to_string(),
        op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Architecture;

    /// work_len covers every split path of every layer at every row count up
    /// to the capacity (the last partial batch, inference chunks).
    #[test]
    fn work_len_bounds_every_split() {
        let arch = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let layers = arch.layers();
        for sm in [1, 46, 108, 132] {
            for capacity in [1, 96, 256, 4096, 9000] {
                let len = work_len(&layers, capacity, sm);
                for m in 1..=capacity {
                    for l in &layers {
                        let s = l.shape(m);
                        let need = [
                            SplitPlan::for_forward(s, sm).partial_len(s.y_len()),
                            SplitPlan::for_input_grad(s, sm).partial_len(s.x_len()),
                            SplitPlan::for_weight_grad(s, sm).partial_len(s.w_len()),
                            SplitPlan::for_bias_grad(m, s.n, sm).partial_len(s.n),
                        ];
                        assert!(
                            need.iter().all(|&x| x <= len),
                            "{need:?} > {len} at {s}, {sm} SMs"
                        );
                    }
                }
            }
        }
    }
}
