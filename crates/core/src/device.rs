//! What running our kernels needs of a device: memory addressed by u64,
//! copies both ways, ops run through their launch plans, a recorded op list
//! replayed (a CUDA graph on a GPU), and device-side timing where there is
//! one. The GPU (`Gpu`) is one such device; the host emulator of crates/emu
//! (kernels/*.cu compiled for the CPU) is the other, so CI runs the kernel
//! regression suite and the whole device backend without a GPU.

use crate::ops::Op;
use crate::Result;

/// What a report says of the device it ran on, so reports from different
/// cards and drivers can be compared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceInfo {
    /// "cuda", "emulator" or "host".
    pub kind: String,
    pub name: String,
    pub sm_count: usize,
    pub compute_capability: Option<(i32, i32)>,
    /// The CUDA version the driver supports.
    pub driver: Option<(i32, i32)>,
    pub nvrtc: Option<(i32, i32)>,
}

pub trait KernelDevice {
    /// One allocation; its address stays valid while it lives.
    type Memory;
    /// A recorded op list, replayed as one unit.
    type Graph;

    /// What it is, for logs ("cuda: NVIDIA H100 … (sm_90, 132 SMs)").
    fn describe(&self) -> String;
    /// The SM count the launch plans are made for.
    fn sm_count(&self) -> usize;
    /// Whether the device works in the caller's own memory (the CPU): then
    /// a backend uses host data in place instead of uploading a copy, and
    /// reading the loss back after every step costs nothing. A GPU (and the
    /// emulator, which stands in for one) keeps the loss on the device and
    /// reads it once per epoch.
    fn runs_in_host_memory(&self) -> bool {
        false
    }
    /// The device for reports; by default its description and SM count.
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            kind: self.describe().split(':').next().unwrap_or("").to_string(),
            name: self.describe(),
            sm_count: self.sm_count(),
            ..DeviceInfo::default()
        }
    }
    /// `bytes` bytes, zeroed.
    fn alloc(&self, bytes: usize) -> Result<Self::Memory>;
    fn address(&self, mem: &Self::Memory) -> u64;
    /// Copies `data` to the start of `mem`.
    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()>;
    /// The first `len` bytes of `mem`, after all queued work finished.
    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>>;
    /// Runs (or enqueues) the op's launches.
    fn run(&self, op: &Op) -> Result<()>;
    /// Waits for all queued work.
    fn synchronize(&self) -> Result<()>;
    /// Records `ops` for replay: the addresses are fixed, so anything that
    /// changes between replays (the batch offset, Adam's step) must be read
    /// from device memory.
    fn record(&self, ops: &[Op]) -> Result<Self::Graph>;
    fn replay(&self, graph: &Self::Graph) -> Result<()>;
    /// Runs `work` and returns its result with the device time it took in
    /// milliseconds, where the device can measure it.
    fn timed<R, E: From<crate::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E>;
}

/// A typed array in a device's memory. Operations take the device, so a
/// buffer can live beside the device that owns it.
pub struct Buffer<D: KernelDevice, T> {
    mem: D::Memory,
    ptr: u64,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<D: KernelDevice, T: bytemuck::Pod> Buffer<D, T> {
    pub fn zeros(dev: &D, len: usize) -> Result<Self> {
        let mem = dev.alloc(len.max(1) * std::mem::size_of::<T>())?;
        Ok(Buffer {
            ptr: dev.address(&mem),
            mem,
            len,
            _t: std::marker::PhantomData,
        })
    }

    pub fn from_host(dev: &D, data: &[T]) -> Result<Self> {
        let mut b = Self::zeros(dev, data.len())?;
        b.upload(dev, data)?;
        Ok(b)
    }

    /// Copies `data` to the start of the buffer.
    pub fn upload(&mut self, dev: &D, data: &[T]) -> Result<()> {
        if data.len() > self.len {
            crate::fail!(
                Plan,
                "upload of {} elements into a buffer of {}",
                data.len(),
                self.len
            );
        }
        dev.write(&mut self.mem, bytemuck::cast_slice(data))
    }

    /// The first `len` elements.
    pub fn download(&self, dev: &D, len: usize) -> Result<Vec<T>> {
        if len > self.len {
            crate::fail!(
                Plan,
                "download of {len} elements from a buffer of {}",
                self.len
            );
        }
        let bytes = dev.read(&self.mem, len * std::mem::size_of::<T>())?;
        let mut out = vec![T::zeroed(); len];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes);
        Ok(out)
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Address of element `index`.
    pub fn at(&self, index: usize) -> u64 {
        assert!(index <= self.len, "index {index} past {}", self.len);
        self.ptr + (index * std::mem::size_of::<T>()) as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A shared device (one GPU opened once per run, serving several backends).
impl<T: KernelDevice> KernelDevice for std::rc::Rc<T> {
    type Memory = T::Memory;
    type Graph = T::Graph;

    fn describe(&self) -> String {
        (**self).describe()
    }
    fn sm_count(&self) -> usize {
        (**self).sm_count()
    }
    fn runs_in_host_memory(&self) -> bool {
        (**self).runs_in_host_memory()
    }
    fn info(&self) -> DeviceInfo {
        (**self).info()
    }
    fn alloc(&self, bytes: usize) -> Result<Self::Memory> {
        (**self).alloc(bytes)
    }
    fn address(&self, mem: &Self::Memory) -> u64 {
        (**self).address(mem)
    }
    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()> {
        (**self).write(mem, data)
    }
    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>> {
        (**self).read(mem, len)
    }
    fn run(&self, op: &Op) -> Result<()> {
        (**self).run(op)
    }
    fn synchronize(&self) -> Result<()> {
        (**self).synchronize()
    }
    fn record(&self, ops: &[Op]) -> Result<Self::Graph> {
        (**self).record(ops)
    }
    fn replay(&self, graph: &Self::Graph) -> Result<()> {
        (**self).replay(graph)
    }
    fn timed<R, E: From<crate::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E> {
        (**self).timed(work)
    }
}
