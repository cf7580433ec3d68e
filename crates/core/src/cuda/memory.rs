//! A GPU allocation addressed by its raw device pointer: the launchers pass
//! pointers (and offsets into the flat parameter buffer) straight to
//! kernels. Typed access goes through `device::Buffer`.

use crate::{err, fail, Result};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use std::sync::Arc;

pub struct DeviceBuffer {
    slice: CudaSlice<u8>,
    ptr: u64,
}

impl DeviceBuffer {
    /// `bytes` bytes (at least one), zeroed.
    pub fn zeros(stream: &Arc<CudaStream>, bytes: usize) -> Result<Self> {
        let slice = stream
            .alloc_zeros::<u8>(bytes.max(1))
            .map_err(|e| err!(Cuda, "cannot allocate {bytes} bytes on the GPU: {e}"))?;
        let ptr = slice.device_ptr(stream).0;
        Ok(DeviceBuffer { slice, ptr })
    }

    /// Copies `data` to the start of the buffer.
    pub fn upload(&mut self, stream: &Arc<CudaStream>, data: &[u8]) -> Result<()> {
        if data.len() > self.slice.len() {
            fail!(
                Plan,
                "upload of {} bytes into a buffer of {}",
                data.len(),
                self.slice.len()
            );
        }
        let mut view = self.slice.slice_mut(..data.len());
        stream
            .memcpy_htod(data, &mut view)
            .map_err(|e| err!(Cuda, "host-to-device copy failed: {e}"))
    }

    /// The first `len` bytes, copied to the host after all queued work.
    pub fn download(&self, stream: &Arc<CudaStream>, len: usize) -> Result<Vec<u8>> {
        if len > self.slice.len() {
            fail!(
                Plan,
                "download of {len} bytes from a buffer of {}",
                self.slice.len()
            );
        }
        let mut out = vec![0u8; len];
        stream
            .memcpy_dtoh(&self.slice.slice(..len), &mut out)
            .map_err(|e| err!(Cuda, "device-to-host copy failed: {e}"))?;
        stream
            .synchronize()
            .map_err(|e| err!(Cuda, "CUDA error: {e}"))?;
        Ok(out)
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }
}
