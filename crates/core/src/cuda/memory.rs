//! Device buffers addressed by raw pointers: the launchers pass pointers
//! (and pointer offsets into the flat parameter buffer) straight to kernels.

use anyhow::{anyhow, Result};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DeviceRepr, ValidAsZeroBits};
use std::sync::Arc;

pub struct DeviceBuffer<T: DeviceRepr> {
    slice: CudaSlice<T>,
    ptr: u64,
}

impl<T: DeviceRepr + ValidAsZeroBits + Copy + Default> DeviceBuffer<T> {
    pub fn zeros(stream: &Arc<CudaStream>, len: usize) -> Result<Self> {
        let slice = stream.alloc_zeros::<T>(len.max(1)).map_err(|e| {
            anyhow!(
                "cannot allocate {} bytes on the GPU: {e}",
                len * std::mem::size_of::<T>()
            )
        })?;
        let ptr = slice.device_ptr(stream).0;
        Ok(DeviceBuffer { slice, ptr })
    }

    pub fn from_host(stream: &Arc<CudaStream>, data: &[T]) -> Result<Self> {
        let mut b = Self::zeros(stream, data.len())?;
        b.upload(stream, data)?;
        Ok(b)
    }

    /// Copies `data` to the start of the buffer.
    pub fn upload(&mut self, stream: &Arc<CudaStream>, data: &[T]) -> Result<()> {
        if data.len() > self.len() {
            return Err(anyhow!(
                "upload of {} elements into a buffer of {}",
                data.len(),
                self.len()
            ));
        }
        let mut view = self.slice.slice_mut(..data.len());
        stream
            .memcpy_htod(data, &mut view)
            .map_err(|e| anyhow!("host-to-device copy failed: {e}"))
    }

    /// The first `len` elements, copied to the host.
    pub fn download(&self, stream: &Arc<CudaStream>, len: usize) -> Result<Vec<T>> {
        let mut out = vec![T::default(); len];
        stream
            .memcpy_dtoh(&self.slice.slice(..len), &mut out)
            .map_err(|e| anyhow!("device-to-host copy failed: {e}"))?;
        stream
            .synchronize()
            .map_err(|e| anyhow!("CUDA error: {e}"))?;
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.slice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slice.len() == 0
    }

    /// Device address of element `index`.
    pub fn at(&self, index: usize) -> u64 {
        assert!(
            index <= self.len(),
            "device index {index} past {}",
            self.len()
        );
        self.ptr + (index * std::mem::size_of::<T>()) as u64
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }
}
