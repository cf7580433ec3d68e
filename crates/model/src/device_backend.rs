//! The device backend: the same model on our kernels, on any
//! `KernelDevice`: the GPU (`CudaBackend`), or the host emulator of
//! crates/emu, which runs this very code in CI. Parameters, gradients and
//! Adam's moments live in flat device buffers; the dataset lives on the
//! device as stored (u8 or f32) and each batch is gathered through the
//! epoch's permutation; the whole train step (gather, forward, loss,
//! backward, Adam, advancing the batch offset) is recorded once (a CUDA
//! graph on a GPU) and replayed every step. The loss stays on the device and
//! is read once per epoch.

use crate::backend::push_row_losses;
use crate::step_plan::{self, BatchSource, StepBuffers, StepPlan};
use crate::{
    Architecture, Backend, Evaluation, Interrupted, Layer, NonFiniteLoss, StepObserver, TrainState,
};
use anyhow::{anyhow, bail, Result};
use dae_core::cuda::ops::{NamedOp, Op};
use dae_core::cuda::profile::{profile_step, StepProfile};
use dae_core::cuda::{Buffer, Gpu, KernelDevice, Offset, Precision, LOSS_BLOCKS};
use dae_core::{Activation, AdamConfig};
use dae_data::{Dataset, Pixels};
use std::collections::HashMap;

/// Rows per inference chunk (evaluate, encode, reconstruct) at least.
const INFERENCE_ROWS: usize = 4096;

/// A dataset's pixels on the device, with the host pixels they copy: held,
/// so their address (the cache key) cannot be reused by other pixels while
/// the copy is cached.
struct DeviceData<D: KernelDevice> {
    buffer: DeviceBytes<D>,
    _host: Pixels,
}

enum DeviceBytes<D: KernelDevice> {
    U8(Buffer<D, u8>),
    F32(Buffer<D, f32>),
}

impl<D: KernelDevice> DeviceData<D> {
    fn ptr(&self) -> u64 {
        match &self.buffer {
            DeviceBytes::U8(b) => b.ptr(),
            DeviceBytes::F32(b) => b.ptr(),
        }
    }

    fn is_u8(&self) -> bool {
        matches!(self.buffer, DeviceBytes::U8(_))
    }
}

/// Identifies uploaded pixels: their host address (immutable, shared
/// storage: the same address is the same contents while the cache holds
/// them) and shape.
type DataKey = (usize, usize, usize);

fn key(d: &Dataset) -> DataKey {
    (d.pixels.address(), d.rows, d.dim)
}

/// The kernels index rows of the dataset without bounds checks.
fn check_rows(rows: &[u32], data: &Dataset) -> Result<()> {
    match rows.iter().find(|&&r| r as usize >= data.rows) {
        Some(r) => bail!("row {r} is past the {} rows of {}", data.rows, data.name),
        None => Ok(()),
    }
}

/// The model on a GPU.
pub type CudaBackend = DeviceBackend<Gpu>;

/// Rows of the device backend's activation buffers for `batch`: the batch,
/// or an inference chunk of up to 16 batches (at most `INFERENCE_ROWS`).
pub fn device_capacity(batch: usize) -> usize {
    batch.max(INFERENCE_ROWS.min(batch.max(1) * 16))
}

/// Bytes `DeviceBackend::on` allocates for `batch` on a device of
/// `sm_count` SMs, every buffer as `on` makes it (datasets and the epoch's
/// row order come on top, as they are uploaded). Saturates on overflow.
pub fn device_buffer_bytes(arch: &Architecture, batch: usize, sm_count: usize) -> usize {
    let layers = arch.layers();
    let capacity = device_capacity(batch);
    let total = arch.param_count();
    let rows_width = |w: usize| capacity.saturating_mul(w);
    let f32s = [
        4 * total,
        rows_width(arch.input_dim),
        layers.iter().map(|l| rows_width(l.fan_out)).sum(),
        2 * rows_width(arch.max_width()),
        step_plan::work_len(&layers, capacity, sm_count).max(1),
        LOSS_BLOCKS,
    ];
    // step and offset (i32), loss_sum (f64), perm and rows_index (u32).
    let small = 4 + 4 + 8 + 4 + 4 * capacity;
    f32s.iter()
        .fold(0usize, |a, &n| a.saturating_add(n.saturating_mul(4)))
        .saturating_add(small)
}

pub struct DeviceBackend<D: KernelDevice> {
    dev: D,
    arch: Architecture,
    layers: Vec<Layer>,
    adam: AdamConfig,
    precision: Precision,
    use_graphs: bool,
    capacity: usize,
    params: Buffer<D, f32>,
    grads: Buffer<D, f32>,
    m: Buffer<D, f32>,
    v: Buffer<D, f32>,
    step: Buffer<D, i32>,
    offset: Buffer<D, i32>,
    loss_sum: Buffer<D, f64>,
    loss_partial: Buffer<D, f32>,
    input: Buffer<D, f32>,
    outputs: Vec<Buffer<D, f32>>,
    delta: [Buffer<D, f32>; 2],
    work: Buffer<D, f32>,
    /// Row order of the current epoch (or the rows of an inference chunk).
    perm: Buffer<D, u32>,
    rows_index: Buffer<D, u32>,
    datasets: HashMap<DataKey, DeviceData<D>>,
    graphs: HashMap<(DataKey, usize), D::Graph>,
    allocated: usize,
    last_epoch_ms: Option<f64>,
}

impl CudaBackend {
    /// Opens the GPU and allocates everything a step at `batch` rows needs.
    pub fn new(
        arch: &Architecture,
        adam: AdamConfig,
        precision: Precision,
        batch: usize,
        state: TrainState,
    ) -> Result<Self> {
        Self::on(Gpu::open()?, arch, adam, precision, batch, state)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.dev
    }

    /// Per-kernel timing of one train step at `rows` rows of `data`, and the
    /// whole step as one graph replay.
    pub fn profile_step(&mut self, data: &Dataset, rows: usize) -> Result<StepProfile> {
        if rows == 0 || rows > self.capacity || rows > data.rows {
            bail!(
                "profile rows {rows} must be in 1..={}",
                self.capacity.min(data.rows)
            );
        }
        let key = self.upload_dataset(data)?;
        let index: Vec<u32> = (0..rows as u32).collect();
        self.rows_index.upload(&self.dev, &index)?;
        let ops = self.step_ops(key, self.rows_index.ptr(), Offset::Value(0), rows, true);
        let state = self.state()?;
        let profile = profile_step(&self.dev, &ops);
        // Timing replays moved the weights: put them back.
        self.load_state(&state)?;
        profile
    }
}

impl<D: KernelDevice> DeviceBackend<D> {
    /// The device it runs on (tests read the emulator's live bytes).
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// Allocates on `dev` everything a step at `batch` rows needs.
    pub fn on(
        dev: D,
        arch: &Architecture,
        adam: AdamConfig,
        precision: Precision,
        batch: usize,
        state: TrainState,
    ) -> Result<Self> {
        let layers = arch.layers();
        let total = arch.param_count();
        if state.params.len() != total {
            bail!(
                "state has {} parameters, architecture {} needs {total}",
                state.params.len(),
                arch.describe()
            );
        }
        let capacity = device_capacity(batch);
        let widest = arch.max_width();
        // Sizes reach the kernels as `int` (element counts up to rows·width).
        if capacity.saturating_mul(widest) > i32::MAX as usize || total > i32::MAX as usize {
            bail!(
                "batch {batch} × width {widest} (or {total} parameters) exceeds the CUDA kernels' 32-bit sizes"
            );
        }
        let work = step_plan::work_len(&layers, capacity, dev.sm_count());
        let mut allocated = 0;
        let mut f32s = |len: usize| -> Result<Buffer<D, f32>> {
            allocated += len * 4;
            Buffer::zeros(&dev, len)
        };
        let backend = DeviceBackend {
            params: f32s(total)?,
            grads: f32s(total)?,
            m: f32s(total)?,
            v: f32s(total)?,
            input: f32s(capacity * arch.input_dim)?,
            outputs: layers
                .iter()
                .map(|l| f32s(capacity * l.fan_out))
                .collect::<Result<_>>()?,
            delta: [f32s(capacity * widest)?, f32s(capacity * widest)?],
            work: f32s(work)?,
            loss_partial: f32s(LOSS_BLOCKS)?,
            step: Buffer::zeros(&dev, 1)?,
            offset: Buffer::zeros(&dev, 1)?,
            loss_sum: Buffer::zeros(&dev, 1)?,
            perm: Buffer::zeros(&dev, 1)?,
            rows_index: Buffer::zeros(&dev, capacity)?,
            datasets: HashMap::new(),
            graphs: HashMap::new(),
            allocated,
            last_epoch_ms: None,
            use_graphs: std::env::var_os("DAE_NO_CUDA_GRAPH").is_none(),
            capacity,
            precision,
            adam,
            layers,
            arch: arch.clone(),
            dev,
        };
        let mut backend = backend;
        backend.load_state(&state)?;
        Ok(backend)
    }

    fn upload_dataset(&mut self, data: &Dataset) -> Result<DataKey> {
        if data.dim != self.arch.input_dim {
            bail!(
                "{} has {} values per row, the model takes {}",
                data.name,
                data.dim,
                self.arch.input_dim
            );
        }
        let k = key(data);
        if !self.datasets.contains_key(&k) {
            let buffer = match &data.pixels {
                Pixels::U8(p) => DeviceBytes::U8(Buffer::from_host(&self.dev, p)?),
                Pixels::F32(p) => DeviceBytes::F32(Buffer::from_host(&self.dev, p)?),
            };
            let d = DeviceData {
                buffer,
                _host: data.pixels.clone(),
            };
            self.allocated += data.bytes();
            self.datasets.insert(k, d);
        }
        Ok(k)
    }

    /// Where this backend's step buffers live on the device.
    fn buffers(&self) -> StepBuffers {
        StepBuffers {
            input: self.input.ptr(),
            outputs: self.outputs.iter().map(Buffer::ptr).collect(),
            delta: [self.delta[0].ptr(), self.delta[1].ptr()],
            params: self.params.ptr(),
            grads: self.grads.ptr(),
            m: self.m.ptr(),
            v: self.v.ptr(),
            step: self.step.ptr(),
            loss_sum: self.loss_sum.ptr(),
            loss_partial: self.loss_partial.ptr(),
            work: self.work.ptr(),
        }
    }

    fn step_ops(
        &self,
        data: DataKey,
        index: u64,
        offset: Offset,
        rows: usize,
        update: bool,
    ) -> Vec<NamedOp> {
        let d = &self.datasets[&data];
        let source = BatchSource {
            u8_data: d.is_u8(),
            data: d.ptr(),
            index,
            offset,
        };
        let plan = StepPlan {
            layers: &self.layers,
            precision: self.precision,
            adam: self.adam,
        };
        plan.train_step(&self.buffers(), &source, rows, update)
    }

    fn enqueue_step(
        &self,
        data: DataKey,
        index: u64,
        offset: Offset,
        rows: usize,
        update: bool,
    ) -> Result<()> {
        self.step_ops(data, index, offset, rows, update)
            .iter()
            .try_for_each(|o| self.dev.run(&o.op))
    }

    fn forward_ops(&self, rows: usize, layer_count: usize, last: Activation) -> Vec<NamedOp> {
        let plan = StepPlan {
            layers: &self.layers,
            precision: self.precision,
            adam: self.adam,
        };
        plan.forward(&self.buffers(), rows, layer_count, last)
    }

    fn enqueue_forward(&self, rows: usize, layer_count: usize, last: Activation) -> Result<()> {
        self.forward_ops(rows, layer_count, last)
            .iter()
            .try_for_each(|o| self.dev.run(&o.op))
    }

    /// Launches the next train step of the epoch (rows from the device-held
    /// offset into the permutation): the replay of its recording (made by
    /// `graph` beforehand), or eagerly.
    fn launch_recorded_step(&self, key: DataKey, rows: usize) -> Result<()> {
        if self.use_graphs {
            let graph = self
                .graphs
                .get(&(key, rows))
                .ok_or_else(|| anyhow!("no recorded step for {rows} rows"))?;
            self.dev.replay(graph)
        } else {
            let offset = Offset::Device(self.offset.ptr());
            self.enqueue_step(key, self.perm.ptr(), offset, rows, true)
        }
    }

    /// Records the train step for (dataset, rows) on first use: it reads
    /// its rows through the device-held offset into the permutation.
    fn graph(&mut self, data: DataKey, rows: usize) -> Result<()> {
        if !self.graphs.contains_key(&(data, rows)) {
            let ops: Vec<Op> = self
                .step_ops(
                    data,
                    self.perm.ptr(),
                    Offset::Device(self.offset.ptr()),
                    rows,
                    true,
                )
                .into_iter()
                .map(|o| o.op)
                .collect();
            let graph = self.dev.record(&ops)?;
            self.graphs.insert((data, rows), graph);
        }
        Ok(())
    }

    fn ensure_perm(&mut self, rows: usize) -> Result<()> {
        if self.perm.len() < rows {
            // Graphs hold the old buffer's address.
            self.graphs.clear();
            self.perm = Buffer::zeros(&self.dev, rows)?;
            self.allocated += rows * 4;
        }
        Ok(())
    }

    /// Runs `f` on each inference chunk after a forward pass through
    /// `layer_count` layers; `f` gets (chunk, rows).
    fn inference(
        &mut self,
        data: &Dataset,
        rows: &[u32],
        layer_count: usize,
        last: Activation,
        mut f: impl FnMut(&Self, &[u32]) -> Result<()>,
    ) -> Result<()> {
        let key = self.upload_dataset(data)?;
        check_rows(rows, data)?;
        for chunk in rows.chunks(self.capacity) {
            self.rows_index.upload(&self.dev, chunk)?;
            let d = &self.datasets[&key];
            let gather = Op::Gather {
                u8_data: d.is_u8(),
                data: d.ptr(),
                index: self.rows_index.ptr(),
                offset: Offset::Value(0),
                rows: chunk.len(),
                dim: data.dim,
                out: self.input.ptr(),
            };
            self.dev.run(&gather)?;
            self.enqueue_forward(chunk.len(), layer_count, last)?;
            f(self, chunk)?;
        }
        Ok(())
    }

    /// The outputs of layer `layer_count` for the given rows, downloaded.
    fn layer_outputs(
        &mut self,
        data: &Dataset,
        rows: &[u32],
        layer_count: usize,
        last: Activation,
    ) -> Result<Vec<f32>> {
        let width = self.layers[layer_count - 1].fan_out;
        let mut out = Vec::with_capacity(rows.len() * width);
        self.inference(data, rows, layer_count, last, |b, chunk| {
            out.extend(b.outputs[layer_count - 1].download(&b.dev, chunk.len() * width)?);
            Ok(())
        })?;
        Ok(out)
    }
}

impl<D: KernelDevice> Backend for DeviceBackend<D> {
    fn device(&self) -> String {
        format!("{} {}", self.dev.describe(), self.precision.name())
    }

    fn last_epoch_device_ms(&self) -> Option<f64> {
        self.last_epoch_ms
    }

    fn load_state(&mut self, state: &TrainState) -> Result<()> {
        if state.params.len() != self.arch.param_count() {
            bail!(
                "state size {} does not match the model's {}",
                state.params.len(),
                self.arch.param_count()
            );
        }
        let dev = &self.dev;
        self.params.upload(dev, &state.params)?;
        self.m.upload(dev, &state.m)?;
        self.v.upload(dev, &state.v)?;
        let step =
            i32::try_from(state.step).map_err(|_| anyhow!("step {} too large", state.step))?;
        self.step.upload(dev, &[step])?;
        dev.synchronize()
    }

    fn state(&mut self) -> Result<TrainState> {
        let (dev, n) = (&self.dev, self.arch.param_count());
        Ok(TrainState {
            params: self.params.download(dev, n)?,
            m: self.m.download(dev, n)?,
            v: self.v.download(dev, n)?,
            step: self.step.download(dev, 1)?[0] as u64,
        })
    }

    fn train_epoch(
        &mut self,
        data: &Dataset,
        perm: &[u32],
        batch: usize,
        observer: &mut dyn StepObserver,
    ) -> Result<f64> {
        if batch == 0 || batch > self.capacity {
            bail!(
                "batch {batch} is not within the 1..={} rows this backend was built for",
                self.capacity
            );
        }
        if perm.len() > i32::MAX as usize {
            bail!(
                "{} rows exceed the CUDA kernels' 32-bit offsets",
                perm.len()
            );
        }
        let key = self.upload_dataset(data)?;
        check_rows(perm, data)?;
        self.ensure_perm(perm.len())?;
        self.perm.upload(&self.dev, perm)?;
        self.offset.upload(&self.dev, &[0])?;
        self.loss_sum.upload(&self.dev, &[0.0])?;
        let (full, last) = (perm.len() / batch, perm.len() % batch);
        if self.use_graphs {
            // Capture before timing starts (capture is host work).
            for rows in [batch, last] {
                if rows > 0 && (rows < batch || full > 0) {
                    self.graph(key, rows)?;
                }
            }
        }
        let sizes = std::iter::repeat_n(batch, full).chain((last > 0).then_some(last));
        let this = &*self;
        let ((), ms) = this.dev.timed(|| {
            let mut done = 0;
            for (step, rows) in sizes.enumerate() {
                this.launch_recorded_step(key, rows)?;
                done += rows;
                observer.on_step(step + 1, done, None);
                if observer.stop_requested() {
                    return Err(Interrupted { step: step + 1 }.into());
                }
            }
            Ok(())
        })?;
        self.last_epoch_ms = ms;
        let sum = self.loss_sum.download(&self.dev, 1)?[0];
        let loss = sum / (perm.len() * data.dim).max(1) as f64;
        if !loss.is_finite() {
            return Err(NonFiniteLoss { step: None }.into());
        }
        Ok(loss)
    }

    fn evaluate(&mut self, data: &Dataset, per_row: bool) -> Result<Evaluation> {
        self.loss_sum.upload(&self.dev, &[0.0])?;
        let dim = data.dim;
        let all: Vec<u32> = (0..data.rows as u32).collect();
        let mut row_loss = Vec::new();
        let last = self.layers.len();
        self.inference(data, &all, last, Activation::Identity, |b, chunk| {
            let count = chunk.len() * dim;
            b.dev.run(&Op::Bce {
                z: b.outputs[last - 1].ptr(),
                t: b.input.ptr(),
                dz: b.delta[0].ptr(),
                partial: b.loss_partial.ptr(),
                accum: b.loss_sum.ptr(),
                count,
                grad_scale: 1.0,
                weight: 1.0,
            })?;
            if per_row {
                let logits = b.outputs[last - 1].download(&b.dev, count)?;
                let input = b.input.download(&b.dev, count)?;
                push_row_losses(&logits, &input, dim, &mut row_loss);
            }
            Ok(())
        })?;
        let sum = self.loss_sum.download(&self.dev, 1)?[0];
        Ok(Evaluation {
            loss: sum / (data.rows * dim).max(1) as f64,
            row_loss,
        })
    }

    fn encode(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>> {
        let k = self.arch.encoder_layer_count();
        self.layer_outputs(data, rows, k, Activation::Identity)
    }

    fn reconstruct(&mut self, data: &Dataset, rows: &[u32]) -> Result<Vec<f32>> {
        let last = self.layers.len();
        self.layer_outputs(data, rows, last, Activation::Sigmoid)
    }

    fn loss_and_gradients(&mut self, data: &Dataset, rows: &[u32]) -> Result<(f64, Vec<f32>)> {
        if rows.len() > self.capacity {
            bail!(
                "{} rows exceed the {} this backend was built for",
                rows.len(),
                self.capacity
            );
        }
        if rows.is_empty() {
            bail!("loss_and_gradients needs at least one row");
        }
        let key = self.upload_dataset(data)?;
        check_rows(rows, data)?;
        self.rows_index.upload(&self.dev, rows)?;
        self.loss_sum.upload(&self.dev, &[0.0])?;
        self.enqueue_step(
            key,
            self.rows_index.ptr(),
            Offset::Value(0),
            rows.len(),
            false,
        )?;
        let sum = self.loss_sum.download(&self.dev, 1)?[0];
        let grads = self.grads.download(&self.dev, self.arch.param_count())?;
        Ok((sum / (rows.len() * data.dim) as f64, grads))
    }
}
