//! The model on any `KernelDevice`: the CPU (`CpuBackend`: the host device,
//! the CPU kernels on host memory), the GPU (`CudaBackend`), or the host
//! emulator of crates/emu, which runs this very code in CI. Every device
//! runs the one training step of `step.rs`. Parameters, gradients and
//! the optimizer's moments live in flat buffers; the dataset lives on the device as
//! stored (u8 or f32) and each batch is gathered through the epoch's
//! permutation; the whole train step (gather, forward, loss, backward,
//! Adam, advancing the batch offset) is recorded once (a CUDA graph on a
//! GPU) and replayed every step.
//!
//! What differs between devices is decided in one place, `Driving`.

use crate::backend::push_row_losses;
use crate::error::{err, fail};
use crate::optimizer;
use crate::step::{self, BatchSource, LambTableBuffers, StepBuffers, StepPlan};
use crate::Result;
use crate::{
    Architecture, Backend, Evaluation, Interrupted, Layer, NonFiniteLoss, Optimizer, StepObserver,
    TrainState,
};
use dae_core::cuda::Gpu;
use dae_core::ops::{Bce, Gather, NamedOp, Offset, Op, LOSS_BLOCKS};
use dae_core::profile::{profile_step, StepProfile};
use dae_core::schedule::LrSchedule;
use dae_core::{Activation, AdamConfig, Buffer, HostDevice, KernelDevice, Precision};
use dae_data::{Dataset, Pixels};
use std::collections::HashMap;
use std::rc::Rc;

/// Rows per inference chunk (evaluate, encode, reconstruct) at least, on a
/// GPU.
const INFERENCE_ROWS: usize = 4096;
/// Rows per inference chunk at least on the CPU (its caches favour smaller
/// chunks).
const HOST_INFERENCE_ROWS: usize = 1024;

/// How the backend drives a device: every difference between devices that
/// remains, in one place.
#[derive(Clone, Copy, Debug)]
struct Driving {
    /// The device works in the caller's memory (the CPU): the dataset is
    /// used in place, not copied; each step's loss is read back (free) to
    /// stop at the first non-finite one and to report the running loss;
    /// evaluation sums per-row losses on the host.
    in_host_memory: bool,
    /// Activation rows: the batch, or a larger inference chunk.
    capacity: usize,
}

impl Driving {
    fn of<D: KernelDevice>(dev: &D, batch: usize) -> Self {
        let in_host_memory = dev.runs_in_host_memory();
        Driving {
            in_host_memory,
            capacity: capacity(in_host_memory, batch),
        }
    }
}

/// Rows of the activation buffers for `batch`: the batch, or an inference
/// chunk (on a GPU up to 16 batches, at most `INFERENCE_ROWS`; on the CPU
/// `HOST_INFERENCE_ROWS`).
pub fn capacity(in_host_memory: bool, batch: usize) -> usize {
    if in_host_memory {
        batch.max(HOST_INFERENCE_ROWS)
    } else {
        batch.max(INFERENCE_ROWS.min(batch.max(1) * 16))
    }
}

/// A dataset's pixels on the device, with the host pixels they copy (or,
/// in host memory, are): held, so their address (the cache key) cannot be
/// reused by other pixels while the copy is cached.
struct DeviceData<D: KernelDevice> {
    buffer: DeviceBytes<D>,
    host: Pixels,
}

enum DeviceBytes<D: KernelDevice> {
    U8(Buffer<D, u8>),
    F32(Buffer<D, f32>),
    /// The host pixels themselves.
    InPlace,
}

impl<D: KernelDevice> DeviceData<D> {
    fn ptr(&self) -> u64 {
        match (&self.buffer, &self.host) {
            (DeviceBytes::U8(b), _) => b.ptr(),
            (DeviceBytes::F32(b), _) => b.ptr(),
            (DeviceBytes::InPlace, Pixels::U8(p)) => p.as_ptr() as u64,
            (DeviceBytes::InPlace, Pixels::F32(p)) => p.as_ptr() as u64,
        }
    }

    fn is_u8(&self) -> bool {
        matches!(self.host, Pixels::U8(_))
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
        Some(r) => fail!(
            Usage,
            "row {r} is past the {} rows of {}",
            data.rows,
            data.name
        ),
        None => Ok(()),
    }
}

/// The model on a GPU (opened once, shared by the backends of a run).
pub type CudaBackend = DeviceBackend<Rc<Gpu>>;
/// The model on the CPU: the same step, its ops run by the CPU kernels.
pub type CpuBackend = DeviceBackend<HostDevice>;

/// The SM count the CPU's launch plans are made for: one, so no product
/// splits and the split-K scratch stays small (the CPU ops ignore it).
pub const HOST_SM_COUNT: usize = 1;

/// Bytes `DeviceBackend::on` (then `with_optimizer(optimizer)`) allocates
/// for `capacity` activation rows on a device of `sm_count` SMs, every
/// buffer as `on` makes it (datasets and the epoch's row order come on top,
/// as they are uploaded). Saturates on overflow.
pub fn buffer_bytes(
    arch: &Architecture,
    capacity: usize,
    sm_count: usize,
    optimizer: Optimizer,
) -> usize {
    let layers = arch.layers();
    let total = arch.param_count();
    let rows_width = |w: usize| capacity.saturating_mul(w);
    let f32s = [
        4 * total,
        rows_width(arch.input_dim),
        // Each layer's output, then its output gradient.
        layers.iter().map(|l| rows_width(l.fan_out)).sum(),
        layers.iter().map(|l| rows_width(l.fan_out)).sum(),
        step::work_len(&layers, capacity, sm_count).max(1),
        LOSS_BLOCKS,
    ];
    // step and offset (i32), loss_sum (f64), perm and rows_index (u32).
    let small = 4 + 4 + 8 + 4 + 4 * capacity;
    f32s.iter()
        .fold(0usize, |a, &n| a.saturating_add(n.saturating_mul(4)))
        .saturating_add(small)
        .saturating_add(optimizer::extra_bytes(optimizer, &layers))
}

/// LAMB's table (uploaded once) and scratch on the device.
struct LambOnDevice<D: KernelDevice> {
    table: Buffer<D, i32>,
    scratch: Buffer<D, f64>,
    tensors: usize,
    chunks: usize,
}

/// Bytes of the scratch gradient `DeviceBackend::with_accumulation`
/// allocates for `micro_batches` micro-batches per step (none for one).
pub fn accumulation_bytes(arch: &Architecture, micro_batches: usize) -> usize {
    if micro_batches > 1 {
        arch.param_count().saturating_mul(4)
    } else {
        0
    }
}

pub struct DeviceBackend<D: KernelDevice> {
    dev: D,
    arch: Architecture,
    layers: Vec<Layer>,
    adam: AdamConfig,
    schedule: LrSchedule,
    optimizer: Optimizer,
    /// Allocated for LAMB only.
    lamb: Option<LambOnDevice<D>>,
    precision: Precision,
    use_graphs: bool,
    driving: Driving,
    capacity: usize,
    params: Buffer<D, f32>,
    grads: Buffer<D, f32>,
    /// Micro-batches per optimizer step (`--accumulate`), and the gradient
    /// buffer of every micro-batch after the first (only when more than one).
    accumulate: usize,
    grads_scratch: Option<Buffer<D, f32>>,
    m: Buffer<D, f32>,
    v: Buffer<D, f32>,
    step: Buffer<D, i32>,
    offset: Buffer<D, i32>,
    loss_sum: Buffer<D, f64>,
    loss_partial: Buffer<D, f32>,
    input: Buffer<D, f32>,
    outputs: Vec<Buffer<D, f32>>,
    /// Each layer's output gradient (`StepBuffers::delta`).
    delta: Vec<Buffer<D, f32>>,
    work: Buffer<D, f32>,
    /// Row order of the current epoch (or the rows of an inference chunk).
    perm: Buffer<D, u32>,
    rows_index: Buffer<D, u32>,
    datasets: HashMap<DataKey, DeviceData<D>>,
    /// Recorded steps by (dataset, rows of the step, micro-batch rows).
    graphs: HashMap<(DataKey, usize, usize), D::Graph>,
    allocated: usize,
    last_epoch_ms: Option<f64>,
}

impl CpuBackend {
    /// The model on the CPU, with buffers for steps of up to `batch` rows.
    pub fn new(
        arch: &Architecture,
        adam: AdamConfig,
        batch: usize,
        state: TrainState,
    ) -> Result<Self> {
        Self::on(
            HostDevice::new(HOST_SM_COUNT),
            arch,
            adam,
            Precision::Fp32,
            batch,
            state,
        )
    }

    /// The same on a host that times its work by the wall clock, for
    /// `profile_step` (`dae bench --device cpu --breakdown`).
    pub fn clocked(self) -> Self {
        DeviceBackend {
            dev: HostDevice::with_clock(HOST_SM_COUNT),
            ..self
        }
    }
}

impl<D: KernelDevice> DeviceBackend<D> {
    /// Per-kernel timing of one train step at `rows` rows of `data`, and the
    /// whole step as one graph replay.
    pub fn profile_step(&mut self, data: &Dataset, rows: usize) -> Result<StepProfile> {
        if rows == 0 || rows > self.capacity || rows > data.rows {
            fail!(
                Usage,
                "profile rows {rows} must be in 1..={}",
                self.capacity.min(data.rows)
            );
        }
        let key = self.upload_dataset(data)?;
        let index: Vec<u32> = (0..rows as u32).collect();
        self.rows_index.upload(&self.dev, &index)?;
        let ops = self.step_ops(key, self.rows_index.ptr(), Offset::Value(0), &[rows], true);
        let state = self.state()?;
        let profile = profile_step(&self.dev, &ops);
        // Timing replays moved the weights: put them back.
        self.load_state(&state)?;
        Ok(profile?)
    }

    /// Whether the recorded step is replayed (a CUDA graph on a GPU) or its
    /// ops are run one by one each step (`DAE_NO_CUDA_GRAPH`, for tools that
    /// cannot follow graphs).
    pub fn recording_graphs(mut self, on: bool) -> Self {
        self.use_graphs = on;
        self
    }

    /// The learning rate of every step from now on (recorded steps are
    /// recorded again: the schedule is part of the update's launch).
    pub fn with_schedule(mut self, schedule: LrSchedule) -> Self {
        self.schedule = schedule;
        self.graphs.clear();
        self
    }

    /// The update of every step from now on (Adam unless set): LAMB's table
    /// is uploaded and its scratch allocated here, and freed for the
    /// others; recorded steps are recorded again. AdamW is Adam with the
    /// `AdamConfig` given to `on` carrying its weight decay.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Result<Self> {
        self.graphs.clear();
        self.optimizer = optimizer;
        if let Some(l) = self.lamb.take() {
            self.allocated -= 4 * l.table.len() + 8 * l.scratch.len();
        }
        if optimizer == Optimizer::Lamb {
            let table = optimizer::lamb_table(&self.layers)?;
            let l = LambOnDevice {
                table: Buffer::from_host(&self.dev, &table.words)?,
                scratch: Buffer::zeros(&self.dev, table.scratch_len())?,
                tensors: table.tensors,
                chunks: table.chunks,
            };
            self.allocated += 4 * l.table.len() + 8 * l.scratch.len();
            self.lamb = Some(l);
        }
        Ok(self)
    }

    /// Each optimizer step from now on takes `micro_batches` micro-batches
    /// of the training batch and sums their gradients (one update each
    /// `micro_batches`; 1: every batch is a step). Allocates the scratch
    /// gradient that more than one needs (`accumulation_bytes`).
    pub fn with_accumulation(mut self, micro_batches: usize) -> Result<Self> {
        if micro_batches == 0 {
            fail!(Settings, "--accumulate must be at least 1");
        }
        if micro_batches > 1 && self.grads_scratch.is_none() {
            let n = self.arch.param_count();
            self.grads_scratch = Some(Buffer::zeros(&self.dev, n)?);
            self.allocated += accumulation_bytes(&self.arch, micro_batches);
        }
        self.accumulate = micro_batches;
        self.graphs.clear();
        Ok(self)
    }

    /// Bytes this backend has allocated on its device.
    pub fn allocated_bytes(&self) -> usize {
        self.allocated
    }
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
            fail!(
                Usage,
                "state has {} parameters, architecture {} needs {total}",
                state.params.len(),
                arch.describe()
            );
        }
        let driving = Driving::of(&dev, batch);
        let capacity = driving.capacity;
        let widest = arch.max_width();
        // Sizes reach the kernels as `int` (element counts up to rows·width).
        if capacity.saturating_mul(widest) > i32::MAX as usize || total > i32::MAX as usize {
            fail!(
                Usage,
                "batch {batch} × width {widest} (or {total} parameters) exceeds the CUDA kernels' 32-bit sizes"
            );
        }
        let work = step::work_len(&layers, capacity, dev.sm_count());
        let mut allocated = 0;
        let mut f32s = |len: usize| -> Result<Buffer<D, f32>> {
            allocated += len * 4;
            Ok(Buffer::zeros(&dev, len)?)
        };
        let backend = DeviceBackend {
            params: f32s(total)?,
            grads: f32s(total)?,
            accumulate: 1,
            grads_scratch: None,
            m: f32s(total)?,
            v: f32s(total)?,
            input: f32s(capacity * arch.input_dim)?,
            outputs: layers
                .iter()
                .map(|l| f32s(capacity * l.fan_out))
                .collect::<Result<_>>()?,
            delta: layers
                .iter()
                .map(|l| f32s(capacity * l.fan_out))
                .collect::<Result<_>>()?,
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
            use_graphs: true,
            schedule: LrSchedule::constant(adam.lr)?,
            optimizer: Optimizer::Adam,
            lamb: None,
            driving,
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
            fail!(
                Usage,
                "{} has {} values per row, the model takes {}",
                data.name,
                data.dim,
                self.arch.input_dim
            );
        }
        let k = key(data);
        if !self.datasets.contains_key(&k) {
            let buffer = match (&data.pixels, self.driving.in_host_memory) {
                (_, true) => DeviceBytes::InPlace,
                (Pixels::U8(p), false) => DeviceBytes::U8(Buffer::from_host(&self.dev, p)?),
                (Pixels::F32(p), false) => DeviceBytes::F32(Buffer::from_host(&self.dev, p)?),
            };
            if !self.driving.in_host_memory {
                self.allocated += data.bytes();
            }
            let d = DeviceData {
                buffer,
                host: data.pixels.clone(),
            };
            self.datasets.insert(k, d);
        }
        Ok(k)
    }

    /// Where this backend's step buffers live on the device.
    fn buffers(&self) -> StepBuffers {
        StepBuffers {
            input: self.input.ptr(),
            outputs: self.outputs.iter().map(Buffer::ptr).collect(),
            delta: self.delta.iter().map(Buffer::ptr).collect(),
            params: self.params.ptr(),
            grads: self.grads.ptr(),
            grads_scratch: self.grads_scratch.as_ref().map_or(0, Buffer::ptr),
            m: self.m.ptr(),
            v: self.v.ptr(),
            step: self.step.ptr(),
            loss_sum: self.loss_sum.ptr(),
            loss_partial: self.loss_partial.ptr(),
            work: self.work.ptr(),
            lamb: self.lamb.as_ref().map(|l| LambTableBuffers {
                table: l.table.ptr(),
                scratch: l.scratch.ptr(),
                tensors: l.tensors,
                chunks: l.chunks,
            }),
        }
    }

    /// The ops of one step over micro-batches of the given sizes.
    fn step_ops(
        &self,
        data: DataKey,
        index: u64,
        offset: Offset,
        micro: &[usize],
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
            schedule: self.schedule,
            optimizer: self.optimizer,
        };
        plan.accumulated_step(&self.buffers(), &source, micro, update)
    }

    fn enqueue_step(
        &self,
        data: DataKey,
        index: u64,
        offset: Offset,
        micro: &[usize],
        update: bool,
    ) -> Result<()> {
        for o in self.step_ops(data, index, offset, micro, update) {
            self.dev.run(&o.op)?;
        }
        Ok(())
    }

    fn forward_ops(&self, rows: usize, layer_count: usize, last: Activation) -> Vec<NamedOp> {
        let plan = StepPlan {
            layers: &self.layers,
            precision: self.precision,
            adam: self.adam,
            schedule: self.schedule,
            optimizer: self.optimizer,
        };
        plan.forward(&self.buffers(), rows, layer_count, last)
    }

    fn enqueue_forward(&self, rows: usize, layer_count: usize, last: Activation) -> Result<()> {
        for o in self.forward_ops(rows, layer_count, last) {
            self.dev.run(&o.op)?;
        }
        Ok(())
    }

    /// Launches the next train step of the epoch (`rows` rows from the
    /// device-held offset into the permutation, in micro-batches of at most
    /// `batch`): the replay of its recording (made by `record_step`
    /// beforehand), or eagerly.
    fn launch_recorded_step(&self, key: DataKey, rows: usize, batch: usize) -> Result<()> {
        if self.use_graphs {
            let graph = self
                .graphs
                .get(&(key, rows, batch))
                .ok_or_else(|| err!(Usage, "no recorded step for {rows} rows"))?;
            Ok(self.dev.replay(graph)?)
        } else {
            let offset = Offset::Device(self.offset.ptr());
            let micro = step::micro_batches(rows, batch);
            self.enqueue_step(key, self.perm.ptr(), offset, &micro, true)
        }
    }

    /// Records the train step for (dataset, rows, batch) on first use: it
    /// reads its rows through the device-held offset into the permutation.
    fn record_step(&mut self, data: DataKey, rows: usize, batch: usize) -> Result<()> {
        if !self.graphs.contains_key(&(data, rows, batch)) {
            let micro = step::micro_batches(rows, batch);
            let ops: Vec<Op> = self
                .step_ops(
                    data,
                    self.perm.ptr(),
                    Offset::Device(self.offset.ptr()),
                    &micro,
                    true,
                )
                .into_iter()
                .map(|o| o.op)
                .collect();
            let graph = self.dev.record(&ops)?;
            self.graphs.insert((data, rows, batch), graph);
        }
        Ok(())
    }

    /// The epoch's steps with each step's loss read back (in host memory):
    /// the first non-finite loss stops the epoch at its step, the observer
    /// sees the running loss, and the epoch's loss is the sample-weighted
    /// mean of the steps' means (a step's loss: its micro-batches' sum over
    /// all its rows).
    fn train_steps_reading_loss(
        &mut self,
        key: DataKey,
        sizes: impl Iterator<Item = usize>,
        batch: usize,
        dim: usize,
        observer: &mut dyn StepObserver,
    ) -> Result<f64> {
        let (mut weighted, mut done) = (0.0, 0);
        for (step, rows) in sizes.enumerate() {
            self.loss_sum.upload(&self.dev, &[0.0])?;
            self.launch_recorded_step(key, rows, batch)?;
            let loss = self.loss_sum.download(&self.dev, 1)?[0] / (rows * dim) as f64;
            if !loss.is_finite() {
                return Err(NonFiniteLoss {
                    step: Some(step + 1),
                }
                .into());
            }
            weighted += loss * rows as f64;
            done += rows;
            observer.on_step(step + 1, done, Some(weighted / done as f64));
            if observer.stop_requested() {
                return Err(Interrupted { step: step + 1 }.into());
            }
        }
        Ok(weighted / done.max(1) as f64)
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
            let gather = Op::Gather(Gather {
                u8_data: d.is_u8(),
                data: d.ptr(),
                index: self.rows_index.ptr(),
                offset: Offset::Value(0),
                rows: chunk.len(),
                dim: data.dim,
                out: self.input.ptr(),
            });
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
        if self.driving.in_host_memory {
            match rayon::current_num_threads() {
                1 => "cpu (1 thread)".to_string(),
                n => format!("cpu ({n} threads)"),
            }
        } else {
            format!("{} {}", self.dev.describe(), self.precision.name())
        }
    }

    fn last_epoch_device_ms(&self) -> Option<f64> {
        self.last_epoch_ms
    }

    fn load_state(&mut self, state: &TrainState) -> Result<()> {
        if state.params.len() != self.arch.param_count() {
            fail!(
                Usage,
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
            i32::try_from(state.step).map_err(|_| err!(Usage, "step {} too large", state.step))?;
        self.step.upload(dev, &[step])?;
        Ok(dev.synchronize()?)
    }

    fn set_schedule(&mut self, schedule: LrSchedule) -> Result<()> {
        schedule.validate()?;
        if schedule != self.schedule {
            // The schedule is part of the recorded update's launch.
            self.schedule = schedule;
            self.graphs.clear();
        }
        Ok(())
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
            fail!(
                Usage,
                "batch {batch} is not within the 1..={} rows this backend was built for",
                self.capacity
            );
        }
        if perm.len() > i32::MAX as usize {
            fail!(
                Usage,
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
        // Rows per optimizer step: `accumulate` micro-batches of `batch`.
        let step_rows = batch.checked_mul(self.accumulate).ok_or_else(|| {
            err!(
                Settings,
                "--batch {batch} × --accumulate {} overflows",
                self.accumulate
            )
        })?;
        let (full, last) = (perm.len() / step_rows, perm.len() % step_rows);
        if self.use_graphs {
            // Capture before timing starts (capture is host work).
            for rows in [step_rows, last] {
                if rows > 0 && (rows < step_rows || full > 0) {
                    self.record_step(key, rows, batch)?;
                }
            }
        }
        let sizes = std::iter::repeat_n(step_rows, full).chain((last > 0).then_some(last));
        if self.driving.in_host_memory {
            return self.train_steps_reading_loss(key, sizes, batch, data.dim, observer);
        }
        let this = &*self;
        let ((), ms) = this.dev.timed(|| -> Result<()> {
            let mut done = 0;
            for (step, rows) in sizes.enumerate() {
                this.launch_recorded_step(key, rows, batch)?;
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
        // In host memory the per-row losses cost nothing to keep, and their
        // mean is the loss reported.
        let host = self.driving.in_host_memory;
        let per_row = per_row || host;
        let mut row_loss = Vec::new();
        let last = self.layers.len();
        self.inference(data, &all, last, Activation::Identity, |b, chunk| {
            let count = chunk.len() * dim;
            if !host {
                b.dev.run(&Op::Bce(Bce {
                    z: b.outputs[last - 1].ptr(),
                    t: b.input.ptr(),
                    dz: b.delta[last - 1].ptr(),
                    partial: b.loss_partial.ptr(),
                    accum: b.loss_sum.ptr(),
                    count,
                    rows: chunk.len(),
                    grad_scale: 1.0,
                    weight: 1.0,
                }))?;
            }
            if per_row {
                let logits = b.outputs[last - 1].download(&b.dev, count)?;
                let input = b.input.download(&b.dev, count)?;
                push_row_losses(&logits, &input, dim, &mut row_loss);
            }
            Ok(())
        })?;
        let loss = if host {
            row_loss.iter().sum::<f64>() / row_loss.len().max(1) as f64
        } else {
            self.loss_sum.download(&self.dev, 1)?[0] / (data.rows * dim).max(1) as f64
        };
        Ok(Evaluation { loss, row_loss })
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
            fail!(
                Usage,
                "{} rows exceed the {} this backend was built for",
                rows.len(),
                self.capacity
            );
        }
        if rows.is_empty() {
            fail!(Usage, "loss_and_gradients needs at least one row");
        }
        let key = self.upload_dataset(data)?;
        check_rows(rows, data)?;
        self.rows_index.upload(&self.dev, rows)?;
        self.loss_sum.upload(&self.dev, &[0.0])?;
        self.enqueue_step(
            key,
            self.rows_index.ptr(),
            Offset::Value(0),
            &[rows.len()],
            false,
        )?;
        let sum = self.loss_sum.download(&self.dev, 1)?[0];
        let grads = self.grads.download(&self.dev, self.arch.param_count())?;
        Ok((sum / (rows.len() * data.dim) as f64, grads))
    }
}
