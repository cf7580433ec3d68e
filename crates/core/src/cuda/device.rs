//! What the kernel regression suite needs of a device: memory addressed by
//! u64, copies both ways, and ops run through their launch plans. The GPU
//! (`Gpu`) is one; the host emulator of crates/emu (kernels/*.cu compiled
//! for the CPU) is the other, so CI runs the same suite without a GPU.

use super::ops::Op;
use super::{DeviceBuffer, Gpu};
use anyhow::Result;

pub trait KernelDevice {
    /// One allocation; its address stays valid while it lives.
    type Memory;

    /// The SM count the launch plans are made for.
    fn sm_count(&self) -> usize;
    /// `bytes` bytes, zeroed.
    fn alloc(&self, bytes: usize) -> Result<Self::Memory>;
    fn address(&self, mem: &Self::Memory) -> u64;
    /// Copies `data` to the start of `mem`.
    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()>;
    /// The first `len` bytes of `mem`, after all queued work finished.
    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>>;
    /// Runs (or enqueues) the op's launches.
    fn run(&self, op: &Op) -> Result<()>;
}

impl KernelDevice for Gpu {
    type Memory = DeviceBuffer<u8>;

    fn sm_count(&self) -> usize {
        self.kernels.sm_count()
    }
    fn alloc(&self, bytes: usize) -> Result<Self::Memory> {
        DeviceBuffer::zeros(&self.stream, bytes)
    }
    fn address(&self, mem: &Self::Memory) -> u64 {
        mem.ptr()
    }
    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()> {
        mem.upload(&self.stream, data)
    }
    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>> {
        mem.download(&self.stream, len)
    }
    fn run(&self, op: &Op) -> Result<()> {
        op.launch(&self.kernels, &self.stream)
    }
}

/// A typed array in a device's memory.
pub struct Buffer<'d, D: KernelDevice, T> {
    dev: &'d D,
    mem: D::Memory,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<'d, D: KernelDevice, T: bytemuck::Pod> Buffer<'d, D, T> {
    pub fn zeros(dev: &'d D, len: usize) -> Result<Self> {
        Ok(Buffer {
            dev,
            mem: dev.alloc(len.max(1) * std::mem::size_of::<T>())?,
            len,
            _t: std::marker::PhantomData,
        })
    }

    pub fn from_host(dev: &'d D, data: &[T]) -> Result<Self> {
        let mut b = Self::zeros(dev, data.len())?;
        b.upload(data)?;
        Ok(b)
    }

    pub fn upload(&mut self, data: &[T]) -> Result<()> {
        anyhow::ensure!(
            data.len() <= self.len,
            "upload of {} elements into a buffer of {}",
            data.len(),
            self.len
        );
        self.dev.write(&mut self.mem, bytemuck::cast_slice(data))
    }

    /// The first `len` elements.
    pub fn download(&self, len: usize) -> Result<Vec<T>> {
        let bytes = self.dev.read(&self.mem, len * std::mem::size_of::<T>())?;
        let mut out = vec![T::zeroed(); len];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes);
        Ok(out)
    }

    pub fn ptr(&self) -> u64 {
        self.dev.address(&self.mem)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address of element `index`.
    pub fn at(&self, index: usize) -> u64 {
        assert!(index <= self.len, "index {index} past {}", self.len);
        self.ptr() + (index * std::mem::size_of::<T>()) as u64
    }
}
