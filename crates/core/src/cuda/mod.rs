//! The CUDA side: finding a usable driver and GPU. cudarc loads libcuda and
//! libnvrtc at run time, so this builds and runs on machines without CUDA;
//! cudarc panics when a library is missing, hence the presence checks first.

/// Ok(device description) when a CUDA driver, NVRTC and a GPU are usable;
/// otherwise why not.
pub fn cuda_status() -> Result<String, String> {
    // SAFETY: these only try to dlopen the libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver found (libcuda could not be loaded)".into());
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("CUDA driver found but no NVRTC library (libnvrtc.so.13); install the CUDA toolkit's NVRTC".into());
    }
    let ctx =
        cudarc::driver::CudaContext::new(0).map_err(|e| format!("no usable CUDA device ({e})"))?;
    let name = ctx
        .name()
        .map_err(|e| format!("cannot query the CUDA device ({e})"))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("cannot query the CUDA device ({e})"))?;
    Ok(format!("{name} (sm_{major}{minor})"))
}
