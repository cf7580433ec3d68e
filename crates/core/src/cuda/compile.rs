//! NVRTC compilation of the kernels in `kernels/`, embedded in the binary,
//! to a CUBIN for the device's own architecture (`sm_XY`: machine code from
//! the same ptxas CI reports registers for, so the driver JIT-compiles
//! nothing), cached on disk by a hash of (source, architecture, options,
//! NVRTC version) so later runs skip the compile.

use crate::{err, Result};
use cudarc::nvrtc::{result, sys};
use sha2::{Digest, Sha256};
use std::ffi::{CStr, CString};
use std::path::PathBuf;

/// The options every kernel is compiled with (also used by the CI check in
/// tools/check_kernels.py): exact float behaviour, no fast-math.
pub const KERNEL_OPTIONS: &[&str] = &["--std=c++17", "--fmad=true"];

/// (file name, source) of every kernels/*.cu, by file name (the list
/// crates/core/build.rs generates).
pub fn kernel_sources() -> &'static [(&'static str, &'static str)] {
    crate::ops::signature::KERNEL_SOURCES
}

pub fn nvrtc_version() -> Result<(i32, i32)> {
    let mut major = 0;
    let mut minor = 0;
    // SAFETY: plain out-parameters; the library presence was checked.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(err!(Cuda, "nvrtcVersion failed: {status:?}"));
    }
    Ok((major, minor))
}

/// How kernels are compiled and cached; the CLI fills it from the
/// environment (`DAE_KERNEL_CACHE`, `DAE_KERNEL_LINEINFO`).
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// Where CUBINs are cached (None: not cached).
    pub cache_dir: Option<PathBuf>,
    /// Source lines in the machine code, for ncu and compute-sanitizer
    /// (part of the cache key).
    pub lineinfo: bool,
}

/// Every option of a compile for `arch` ("sm_90").
fn options(arch: &str, lineinfo: bool) -> Vec<String> {
    let mut o: Vec<String> = KERNEL_OPTIONS.iter().map(|s| s.to_string()).collect();
    o.push(format!("--gpu-architecture={arch}"));
    if lineinfo {
        o.push("-lineinfo".into());
    }
    o
}

/// The CUBIN of one NVRTC compile.
fn nvrtc_cubin(file: &str, source: &str, options: &[String]) -> Result<Vec<u8>> {
    let src = CString::new(source).map_err(|_| err!(Cuda, "kernels/{file} holds a NUL byte"))?;
    let name = CString::new(file).map_err(|_| err!(Cuda, "bad kernel file name {file}"))?;
    let prog = result::create_program(&src, Some(&name)).map_err(|e| {
        err!(
            Cuda,
            "NVRTC could not create a program for kernels/{file}: {e:?}"
        )
    })?;
    // SAFETY: `prog` is live until destroy_program below; the buffers are
    // sized by NVRTC's own size queries.
    let out = unsafe {
        let compiled = result::compile_program(prog, options).map_err(|e| {
            let log = result::get_program_log(prog)
                .map(|l| CStr::from_ptr(l.as_ptr()).to_string_lossy().into_owned())
                .unwrap_or_default();
            err!(
                Cuda,
                "NVRTC failed to compile kernels/{file} ({}): {e:?}\n{log}",
                options.join(" ")
            )
        });
        let cubin = compiled.and_then(|()| {
            let mut size = 0usize;
            let rc = sys::nvrtcGetCUBINSize(prog, &mut size);
            if rc != sys::nvrtcResult::NVRTC_SUCCESS {
                return Err(err!(Cuda, "nvrtcGetCUBINSize for kernels/{file}: {rc:?}"));
            }
            let mut buf = vec![0u8; size];
            let rc = sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr().cast());
            if rc != sys::nvrtcResult::NVRTC_SUCCESS {
                return Err(err!(Cuda, "nvrtcGetCUBIN for kernels/{file}: {rc:?}"));
            }
            Ok(buf)
        });
        let _ = result::destroy_program(prog);
        cubin
    };
    out
}

/// The CUBIN of `source` for the device `cc` (with source lines when
/// `lineinfo`), from the cache or freshly compiled.
pub fn compile(file: &str, source: &str, cc: (i32, i32), how: &CompileOptions) -> Result<Vec<u8>> {
    let arch = format!("sm_{}{}", cc.0, cc.1);
    let options = options(&arch, how.lineinfo);
    let nvrtc = nvrtc_version()?;
    let mut key = Sha256::new();
    key.update(source.as_bytes());
    key.update(format!("{options:?} nvrtc {nvrtc:?}").as_bytes());
    let key: String = key
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let cached = how.cache_dir.as_ref().map(|d| {
        d.join(format!(
            "{}-{arch}-{key}.cubin",
            file.trim_end_matches(".cu")
        ))
    });
    if let Some(path) = &cached {
        // A cached file that is not an ELF image is recompiled, not loaded.
        if let Ok(cubin) = std::fs::read(path) {
            if cubin.starts_with(b"\x7fELF") {
                return Ok(cubin);
            }
        }
    }
    let cubin = nvrtc_cubin(file, source, &options)?;
    if let Some(path) = cached {
        // A cache that cannot be written only costs a recompile next time.
        let _ = std::fs::create_dir_all(path.parent().unwrap()).and_then(|_| {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &cubin)?;
            std::fs::rename(&tmp, &path)
        });
    }
    Ok(cubin)
}
