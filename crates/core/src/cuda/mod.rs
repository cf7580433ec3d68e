//! The CUDA driver side: finding a usable driver and GPU (once per run),
//! compiling our kernels with NVRTC (cached on disk), loading and launching
//! them, graph capture and event timing, and cuBLAS as a benchmark
//! reference. cudarc loads libcuda and libnvrtc at run time, so this builds
//! and runs on machines without CUDA; cudarc panics when a library is
//! missing, hence the presence checks first. Nothing here reads the
//! environment: the CLI passes what it found there (`GpuOptions`).

mod compile;
pub mod cublas;
mod gpu;
mod kernels;
mod memory;

pub use compile::{compile, kernel_sources, nvrtc_version, CompileOptions, KERNEL_OPTIONS};
pub use gpu::{Gpu, GpuOptions};
pub use kernels::Kernels;
pub use memory::DeviceBuffer;

use crate::{err, Result};

/// Why CUDA cannot be used here, or Ok when the driver and NVRTC load.
pub fn libraries_present() -> Result<()> {
    // SAFETY: these only try to dlopen the libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(err!(
            NoDevice,
            "no CUDA driver found (libcuda could not be loaded)"
        ));
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(err!(NoDevice, "CUDA driver found but no NVRTC library (libnvrtc.so.13); install the CUDA toolkit's NVRTC"));
    }
    Ok(())
}

/// The CUDA version the driver supports, e.g. (13, 0).
pub fn driver_version() -> Result<(i32, i32)> {
    libraries_present()?;
    let mut v = 0;
    // SAFETY: a plain out-parameter; the library is present.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if r != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return Err(err!(Cuda, "cuDriverGetVersion failed: {r:?}"));
    }
    Ok((v / 1000, v % 1000 / 10))
}
