//! The CPU backend: forward, backward and Adam over preallocated buffers.

use crate::backend::push_row_losses;
use crate::{
    Architecture, Backend, Evaluation, Interrupted, Layer, NonFiniteLoss, StepObserver, TrainState,
};
use anyhow::{bail, Result};
use dae_core::{cpu, Activation, AdamConfig};
use dae_data::Dataset;

/// Rows per forward pass when evaluating, encoding or reconstructing.
const INFERENCE_BATCH: usize = 1024;

pub struct CpuBackend {
    arch: Architecture,
    layers: Vec<Layer>,
    adam: AdamConfig,
    state: TrainState,
    /// Rows the buffers below hold.
    capacity: usize,
    input: Vec<f32>,
    /// Each layer's output; the last layer's holds logits (sigmoid is fused
    /// into the loss).
    outputs: Vec<Vec<f32>>,
    /// Ping-pong buffers for pre-activation gradients.
    delta: [Vec<f32>; 2],
    grads: Vec<f32>,
}

impl CpuBackend {
    pub fn new(arch: &Architecture, adam: AdamConfig, state: TrainState) -> Result<Self> {
        if state.params.len() != arch.param_count() {
            bail!(
                "state has {} parameters, architecture {} needs {}",
                state.params.len(),
                arch.describe(),
                arch.param_count()
            );
        }
        Ok(CpuBackend {
            layers: arch.layers(),
            arch: arch.clone(),
            adam,
            grads: vec![0.0; state.params.len()],
            state,
            capacity: 0,
            input: Vec::new(),
            outputs: Vec::new(),
            delta: [Vec::new(), Vec::new()],
        })
    }

    /// Grows the buffers to hold `rows` rows (never shrinks: no allocation
    /// in the steady state).
    /// The rows of activation buffers a training run grows to: the batch
    /// (at most the training rows) or an inference chunk of the validation
    /// set, whichever is larger. The memory plan counts these rows.
    pub fn activation_rows(batch: usize, train_rows: usize, val_rows: usize) -> usize {
        batch
            .min(train_rows)
            .max(INFERENCE_BATCH.min(val_rows.max(1)))
    }

    /// Bytes of the backend's own buffers: parameters, gradients, Adam's
    /// moments and the activation buffers at their current size.
    pub fn buffer_bytes(&self) -> usize {
        let s = &self.state;
        let floats = s.params.len()
            + s.m.len()
            + s.v.len()
            + self.grads.len()
            + self.input.len()
            + self.outputs.iter().map(Vec::len).sum::<usize>()
            + self.delta.iter().map(Vec::len).sum::<usize>();
        floats * 4
    }

    fn reserve(&mut self, rows: usize) {
        if rows <= self.capacity {
            return;
        }
        self.capacity = rows;
        self.input = vec![0.0; rows * self.arch.input_dim];
        self.outputs = self
            .layers
            .iter()
            .map(|l| vec![0.0; rows * l.fan_out])
            .collect();
        let widest = rows * self.arch.max_width();
        self.delta = [vec![0.0; widest], vec![0.0; widest]];
    }

    /// Forward through the first `layer_count` layers of `self.input[..rows]`;
    /// the output layer, when included, uses `last` as its activation
    /// (identity in training, where the sigmoid is fused into the loss).
    fn forward(&mut self, rows: usize, layer_count: usize, last: Activation) {
        let params = &self.state.params;
        for (i, layer) in self.layers[..layer_count].iter().enumerate() {
            let (before, rest) = self.outputs.split_at_mut(i);
            let x = if i == 0 { &self.input } else { &before[i - 1] };
            let w = &params[layer.weight_offset..layer.bias_offset];
            let b = &params[layer.bias_offset..layer.bias_offset + layer.fan_out];
            let act = match layer.activation {
                Activation::Sigmoid => last,
                a => a,
            };
            cpu::dense_forward(
                x,
                w,
                b,
                &mut rest[0],
                rows,
                layer.fan_in,
                layer.fan_out,
                act,
            );
        }
    }

    /// One optimizer step on the given rows; returns the batch's mean loss.
    fn train_step(&mut self, data: &Dataset, rows: &[u32]) -> f64 {
        let loss = self.compute_gradients(data, rows);
        let s = &mut self.state;
        s.step += 1;
        cpu::adam_step(
            &mut s.params,
            &self.grads,
            &mut s.m,
            &mut s.v,
            s.step,
            &self.adam,
        );
        loss
    }

    /// Mean loss of the given rows and its gradient with respect to every
    /// parameter (left in `self.grads`), without updating anything.
    fn compute_gradients(&mut self, data: &Dataset, rows: &[u32]) -> f64 {
        self.reserve(rows.len());
        let n = rows.len();
        let dim = self.arch.input_dim;
        data.gather(rows, &mut self.input);
        self.forward(n, self.layers.len(), Activation::Identity);

        let count = n * dim;
        let logits = &self.outputs[self.layers.len() - 1][..count];
        let scale = 1.0 / count as f32;
        let loss_sum = cpu::bce_logits(logits, &self.input[..count], &mut self.delta[0], scale);

        let mut current = 0;
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let (dw, rest) = self.grads[layer.weight_offset..]
                .split_at_mut(layer.bias_offset - layer.weight_offset);
            let x = if i == 0 {
                &self.input
            } else {
                &self.outputs[i - 1]
            };
            let (d0, d1) = self.delta.split_at_mut(1);
            let (dz, dx) = if current == 0 {
                (&d0[0], &mut d1[0])
            } else {
                (&d1[0], &mut d0[0])
            };
            cpu::dense_backward_params(
                x,
                dz,
                dw,
                &mut rest[..layer.fan_out],
                n,
                layer.fan_in,
                layer.fan_out,
            );
            if i > 0 {
                let w = &self.state.params[layer.weight_offset..layer.bias_offset];
                let mask = &self.outputs[i - 1];
                cpu::dense_backward_input(dz, w, Some(mask), dx, n, layer.fan_out, layer.fan_in);
                current = 1 - current;
            }
        }

        loss_sum / count as f64
    }

    /// Runs `f` on each inference chunk of `rows` after a forward pass
    /// through `layer_count` layers (`last`: the output layer's activation);
    /// `f` gets (chunk rows, input, layer output).
    fn inference(
        &mut self,
        data: &Dataset,
        rows: &[u32],
        layer_count: usize,
        last: Activation,
        mut f: impl FnMut(&[u32], &[f32], &[f32]),
    ) {
        self.reserve(INFERENCE_BATCH.min(rows.len().max(1)));
        for chunk in rows.chunks(self.capacity) {
            data.gather(chunk, &mut self.input);
            self.forward(chunk.len(), layer_count, last);
            f(chunk, &self.input, &self.outputs[layer_count - 1]);
        }
    }

    /// The outputs of layer `layer_count` for the given rows.
    fn layer_outputs(
        &mut self,
        data: &Dataset,
        rows: &[u32],
        layer_count: usize,
        last: Activation,
    ) -> Vec<f32> {
        let width = self.layers[layer_count - 1].fan_out;
        let mut out = Vec::with_capacity(rows.len() * width);
        self.inference(data, rows, layer_count, last, |chunk, _, y| {
            out.extend_from_slice(&y[..chunk.len() * width]);
        });
        out
    }
}

impl Backend for CpuBackend {
    fn device(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn load_state(&mut self, state: &TrainState) -> Result<()> {
        if state.params.len() != self.state.params.len() {
            bail!(
                "state size {} does not match the model's {}",
                state.params.len(),
                self.state.params.len()
            );
        }
        self.state = state.clone();
        Ok(())
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(self.state.clone())
    }

    fn train_epoch(
        &mut self,
        data: &Dataset,
        perm: &[u32],
        batch: usize,
        observer: &mut dyn StepObserver,
    ) -> Result<f64> {
        self.reserve(batch.min(perm.len()));
        let mut weighted = 0.0;
        let mut done = 0;
        for (step, rows) in perm.chunks(batch).enumerate() {
            let loss = self.train_step(data, rows);
            if !loss.is_finite() {
                return Err(NonFiniteLoss {
                    step: Some(step + 1),
                }
                .into());
            }
            weighted += loss * rows.len() as f64;
            done += rows.len();
            observer.on_step(step + 1, done, Some(weighted / done as f64));
            if observer.stop_requested() {
                return Err(Interrupted { step: step + 1 }.into());
            }
        }
        Ok(weighted / done.max(1) as f64)
    }

    fn evaluate(&mut self, data: &Dataset, _per_row: bool) -> Result<Evaluation> {
        // The per-row losses are the loss's own terms here, so always kept.
        let dim = self.arch.input_dim;
        let all: Vec<u32> = (0..data.rows as u32).collect();
        let mut row_loss = Vec::with_capacity(data.rows);
        let last = self.layers.len();
        self.inference(
            data,
            &all,
            last,
            Activation::Identity,
            |chunk, input, logits| {
                let count = chunk.len() * dim;
                push_row_losses(&logits[..count], &input[..count], dim, &mut row_loss);
            },
        );
        let loss = row_loss.iter().sum::<f64>() / row_loss.len().max(1) as f64;
        Ok(Evaluation { loss, row_loss })
    }

    fn encode(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>> {
        let k = self.arch.encoder_layer_count();
        Ok(self.layer_outputs(data, rows, k, Activation::Identity))
    }

    fn reconstruct(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>> {
        let last = self.layers.len();
        Ok(self.layer_outputs(data, rows, last, Activation::Sigmoid))
    }

    fn loss_and_gradients(&mut self, data: &Dataset, rows: &[u32]) -> Result<(f64, Vec<f32>)> {
        let loss = self.compute_gradients(data, rows);
        Ok((loss, self.grads.clone()))
    }
}
