//! The CUDA backend: the same model on our kernels. Parameters, gradients
//! and Adam's moments live in flat device buffers; the dataset lives on the
//! device as stored (u8 or f32) and each batch is gathered through the
//! epoch's permutation; the whole train step (gather, forward, loss,
//! backward, Adam, advancing the batch offset) is captured once as a CUDA
//! graph and replayed every step. The loss stays on the device and is read
//! once per epoch.

use crate::backend::push_row_losses;
use crate::step_plan::{self, BatchSource, StepBuffers, StepPlan};
use crate::{Architecture, Backend, Evaluation, Layer, NonFiniteLoss, StepObserver, TrainState};
use anyhow::{anyhow, bail, Result};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;
use dae_core::cuda::ops::{NamedOp, Op};
use dae_core::cuda::profile::{profile_step, StepProfile};
use dae_core::cuda::{DeviceBuffer, Gpu, Offset, Precision, LOSS_BLOCKS};
use dae_core::{Activation, AdamConfig};
use dae_data::{Dataset, Pixels};
use std::collections::HashMap;

/// Rows per inference chunk (evaluate, encode, reconstruct) at least.
const INFERENCE_ROWS: usize = 4096;

/// A dataset's pixels on the device, with the host pixels they copy: held,
/// so their address (the cache key) cannot be reused by other pixels while
/// the copy is cached.
struct DeviceData {
    buffer: DeviceBytes,
    _host: Pixels,
}

enum DeviceBytes {
    U8(DeviceBuffer<u8>),
    F32(DeviceBuffer<f32>),
}

impl DeviceData {
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

pub struct CudaBackend {
    gpu: Gpu,
    arch: Architecture,
    layers: Vec<Layer>,
    adam: AdamConfig,
    precision: Precision,
    use_graphs: bool,
    capacity: usize,
    params: DeviceBuffer<f32>,
    grads: DeviceBuffer<f32>,
    m: DeviceBuffer<f32>,
    v: DeviceBuffer<f32>,
    step: DeviceBuffer<i32>,
    offset: DeviceBuffer<i32>,
    loss_sum: DeviceBuffer<f64>,
    loss_partial: DeviceBuffer<f32>,
    input: DeviceBuffer<f32>,
    outputs: Vec<DeviceBuffer<f32>>,
    delta: [DeviceBuffer<f32>; 2],
    work: DeviceBuffer<f32>,
    /// Row order of the current epoch (or the rows of an inference chunk).
    perm: DeviceBuffer<u32>,
    rows_index: DeviceBuffer<u32>,
    datasets: HashMap<DataKey, DeviceData>,
    graphs: HashMap<(DataKey, usize), CudaGraph>,
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
        let gpu = Gpu::open()?;
        let layers = arch.layers();
        let total = arch.param_count();
        if state.params.len() != total {
            bail!(
                "state has {} parameters, architecture {} needs {total}",
                state.params.len(),
                arch.describe()
            );
        }
        let capacity = batch.max(INFERENCE_ROWS.min(batch.max(1) * 16));
        let s = &gpu.stream;
        let widest = arch.max_width();
        // Sizes reach the kernels as `int` (element counts up to rows·width).
        if capacity.saturating_mul(widest) > i32::MAX as usize || total > i32::MAX as usize {
            bail!(
                "batch {batch} × width {widest} (or {total} parameters) exceeds the CUDA kernels' 32-bit sizes"
            );
        }
        let work = step_plan::work_len(&layers, capacity, gpu.sm_count as usize);
        let mut allocated = 0;
        let mut f32s = |len: usize| -> Result<DeviceBuffer<f32>> {
            allocated += len * 4;
            DeviceBuffer::zeros(s, len)
        };
        let backend = CudaBackend {
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
            step: DeviceBuffer::zeros(s, 1)?,
            offset: DeviceBuffer::zeros(s, 1)?,
            loss_sum: DeviceBuffer::zeros(s, 1)?,
            perm: DeviceBuffer::zeros(s, 1)?,
            rows_index: DeviceBuffer::zeros(s, capacity)?,
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
            gpu,
        };
        let mut backend = backend;
        backend.load_state(&state)?;
        Ok(backend)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
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
            let s = &self.gpu.stream;
            let buffer = match &data.pixels {
                Pixels::U8(p) => DeviceBytes::U8(DeviceBuffer::from_host(s, p)?),
                Pixels::F32(p) => DeviceBytes::F32(DeviceBuffer::from_host(s, p)?),
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
            outputs: self.outputs.iter().map(DeviceBuffer::ptr).collect(),
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
        let (k, s) = (&self.gpu.kernels, &self.gpu.stream);
        self.step_ops(data, index, offset, rows, update)
            .iter()
            .try_for_each(|o| o.op.launch(k, s))
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
        let (k, s) = (&self.gpu.kernels, &self.gpu.stream);
        self.forward_ops(rows, layer_count, last)
            .iter()
            .try_for_each(|o| o.op.launch(k, s))
    }

    /// Launches the next train step of the epoch (rows from the device-held
    /// offset into the permutation): a graph replay, or eagerly.
    fn launch_train_step(&mut self, key: DataKey, rows: usize) -> Result<()> {
        if self.use_graphs {
            self.graph(key, rows)?
                .launch()
                .map_err(|e| anyhow!("CUDA graph launch failed: {e}"))
        } else {
            let offset = Offset::Device(self.offset.ptr());
            self.enqueue_step(key, self.perm.ptr(), offset, rows, true)
        }
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
        let s = self.gpu.stream.clone();
        let index: Vec<u32> = (0..rows as u32).collect();
        self.rows_index.upload(&s, &index)?;
        let ops = self.step_ops(key, self.rows_index.ptr(), Offset::Value(0), rows, true);
        let state = self.state()?;
        let profile = profile_step(&self.gpu, &ops);
        // Timing replays moved the weights: put them back.
        self.load_state(&state)?;
        profile
    }

    /// The captured train step for (dataset, rows), capturing it on first use.
    fn graph(&mut self, data: DataKey, rows: usize) -> Result<&CudaGraph> {
        if !self.graphs.contains_key(&(data, rows)) {
            let s = self.gpu.stream.clone();
            s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(|e| anyhow!("CUDA graph capture could not start: {e}"))?;
            let enqueued = self.enqueue_step(
                data,
                self.perm.ptr(),
                Offset::Device(self.offset.ptr()),
                rows,
                true,
            );
            let graph = s.end_capture(CUgraphInstantiate_flags(0));
            enqueued?;
            let graph = graph
                .map_err(|e| anyhow!("CUDA graph capture failed: {e}"))?
                .ok_or_else(|| anyhow!("CUDA graph capture produced no graph"))?;
            graph
                .upload()
                .map_err(|e| anyhow!("CUDA graph upload failed: {e}"))?;
            self.graphs.insert((data, rows), graph);
        }
        Ok(&self.graphs[&(data, rows)])
    }

    fn ensure_perm(&mut self, rows: usize) -> Result<()> {
        if self.perm.len() < rows {
            // Graphs hold the old buffer's address.
            self.graphs.clear();
            self.perm = DeviceBuffer::zeros(&self.gpu.stream, rows)?;
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
            let s = self.gpu.stream.clone();
            self.rows_index.upload(&s, chunk)?;
            let d = &self.datasets[&key];
            Op::Gather {
                u8_data: d.is_u8(),
                data: d.ptr(),
                index: self.rows_index.ptr(),
                offset: Offset::Value(0),
                rows: chunk.len(),
                dim: data.dim,
                out: self.input.ptr(),
            }
            .launch(&self.gpu.kernels, &s)?;
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
            out.extend(b.outputs[layer_count - 1].download(&b.gpu.stream, chunk.len() * width)?);
            Ok(())
        })?;
        Ok(out)
    }
}

impl Backend for CudaBackend {
    fn device(&self) -> String {
        format!("cuda: {} {}", self.gpu.describe(), self.precision.name())
    }

    fn last_epoch_device_ms(&self) -> Option<f64> {
        self.last_epoch_ms
    }

    fn load_state(&mut self, state: &TrainState) -> Result<()> {
        let s = self.gpu.stream.clone();
        if state.params.len() != self.arch.param_count() {
            bail!(
                "state size {} does not match the model's {}",
                state.params.len(),
                self.arch.param_count()
            );
        }
        self.params.upload(&s, &state.params)?;
        self.m.upload(&s, &state.m)?;
        self.v.upload(&s, &state.v)?;
        let step =
            i32::try_from(state.step).map_err(|_| anyhow!("step {} too large", state.step))?;
        self.step.upload(&s, &[step])?;
        self.gpu.synchronize()
    }

    fn state(&mut self) -> Result<TrainState> {
        let s = &self.gpu.stream;
        let n = self.arch.param_count();
        Ok(TrainState {
            params: self.params.download(s, n)?,
            m: self.m.download(s, n)?,
            v: self.v.download(s, n)?,
            step: self.step.download(s, 1)?[0] as u64,
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
        let s = self.gpu.stream.clone();
        self.perm.upload(&s, perm)?;
        self.offset.upload(&s, &[0])?;
        self.loss_sum.upload(&s, &[0.0])?;
        let (full, last) = (perm.len() / batch, perm.len() % batch);
        if self.use_graphs {
            // Capture before timing starts (capture is host work).
            for rows in [batch, last] {
                if rows > 0 && (rows < batch || full > 0) {
                    self.graph(key, rows)?;
                }
            }
        }
        let event = || {
            self.gpu
                .ctx
                .new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| anyhow!("{e}"))
        };
        let (started, ended) = (event()?, event()?);
        started.record(&s).map_err(|e| anyhow!("{e}"))?;
        let mut done = 0;
        let sizes = std::iter::repeat_n(batch, full).chain((last > 0).then_some(last));
        for (step, rows) in sizes.enumerate() {
            self.launch_train_step(key, rows)?;
            done += rows;
            observer.on_step(step + 1, done, None);
        }
        ended.record(&s).map_err(|e| anyhow!("{e}"))?;
        let sum = self.loss_sum.download(&s, 1)?[0];
        self.last_epoch_ms = Some(started.elapsed_ms(&ended).map_err(|e| anyhow!("{e}"))? as f64);
        let loss = sum / (perm.len() * data.dim).max(1) as f64;
        if !loss.is_finite() {
            return Err(NonFiniteLoss { step: None }.into());
        }
        Ok(loss)
    }

    fn evaluate(&mut self, data: &Dataset, per_row: bool) -> Result<Evaluation> {
        let s = self.gpu.stream.clone();
        self.loss_sum.upload(&s, &[0.0])?;
        let dim = data.dim;
        let all: Vec<u32> = (0..data.rows as u32).collect();
        let mut row_loss = Vec::new();
        let last = self.layers.len();
        self.inference(data, &all, last, Activation::Identity, |b, chunk| {
            let count = chunk.len() * dim;
            Op::Bce {
                z: b.outputs[last - 1].ptr(),
                t: b.input.ptr(),
                dz: b.delta[0].ptr(),
                partial: b.loss_partial.ptr(),
                accum: b.loss_sum.ptr(),
                count,
                grad_scale: 1.0,
                weight: 1.0,
            }
            .launch(&b.gpu.kernels, &b.gpu.stream)?;
            if per_row {
                let logits = b.outputs[last - 1].download(&b.gpu.stream, count)?;
                let input = b.input.download(&b.gpu.stream, count)?;
                push_row_losses(&logits, &input, dim, &mut row_loss);
            }
            Ok(())
        })?;
        let sum = self.loss_sum.download(&s, 1)?[0];
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
        let s = self.gpu.stream.clone();
        self.rows_index.upload(&s, rows)?;
        self.loss_sum.upload(&s, &[0.0])?;
        self.enqueue_step(
            key,
            self.rows_index.ptr(),
            Offset::Value(0),
            rows.len(),
            false,
        )?;
        let sum = self.loss_sum.download(&s, 1)?[0];
        let grads = self.grads.download(&s, self.arch.param_count())?;
        Ok((sum / (rows.len() * data.dim) as f64, grads))
    }
}
