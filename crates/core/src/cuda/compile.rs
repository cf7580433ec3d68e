//! NVRTC compilation of the kernels in `kernels/`, embedded in the binary,
//! for the device's own architecture, cached on disk by a hash of (source,
//! architecture, options, NVRTC version) so later runs skip the compile.

use anyhow::{anyhow, Context, Result};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The options every kernel is compiled with (also used by the CI check in
/// tools/check_kernels.py): exact float behaviour, no fast-math.
pub const KERNEL_OPTIONS: &[&str] = &["--std=c++17", "--fmad=true"];

/// (file name, source) of every kernel file.
pub fn kernel_sources() -> [(&'static str, &'static str); 6] {
    [
        (
            "gemm_fp32.cu",
            include_str!("../../../../kernels/gemm_fp32.cu"),
        ),
        ("gemm_tc.cu", include_str!("../../../../kernels/gemm_tc.cu")),
        ("reduce.cu", include_str!("../../../../kernels/reduce.cu")),
        ("loss.cu", include_str!("../../../../kernels/loss.cu")),
        ("adam.cu", include_str!("../../../../kernels/adam.cu")),
        ("data.cu", include_str!("../../../../kernels/data.cu")),
    ]
}

pub fn nvrtc_version() -> Result<(i32, i32)> {
    let mut major = 0;
    let mut minor = 0;
    // SAFETY: plain out-parameters; the library presence was checked.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(anyhow!("nvrtcVersion failed: {status:?}"));
    }
    Ok((major, minor))
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DAE_KERNEL_CACHE") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dae").join("kernels"))
}

/// "compute_90" for (9, 0); NVRTC wants a `&'static str`.
fn arch_name(cc: (i32, i32)) -> &'static str {
    let name = format!("compute_{}{}", cc.0, cc.1);
    Box::leak(name.into_boxed_str())
}

/// PTX of `source` for the device `cc`, from the cache or freshly compiled.
pub fn compile(file: &str, source: &str, cc: (i32, i32)) -> Result<Ptx> {
    let arch = arch_name(cc);
    let nvrtc = nvrtc_version()?;
    let mut key = Sha256::new();
    key.update(source.as_bytes());
    key.update(format!("{arch} {KERNEL_OPTIONS:?} nvrtc {nvrtc:?}").as_bytes());
    let key: String = key
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let cached =
        cache_dir().map(|d| d.join(format!("{}-{arch}-{key}.ptx", file.trim_end_matches(".cu"))));
    if let Some(path) = &cached {
        if let Ok(ptx) = std::fs::read_to_string(path) {
            return Ok(Ptx::from_src(ptx));
        }
    }
    let opts = CompileOptions {
        arch: Some(arch),
        options: KERNEL_OPTIONS.iter().map(|s| s.to_string()).collect(),
        name: Some(file.to_string()),
        ..Default::default()
    };
    let ptx = compile_ptx_with_opts(source, opts)
        .map_err(|e| anyhow!("NVRTC failed to compile kernels/{file} for {arch}: {e}"))?;
    if let Some(path) = cached {
        // A cache that cannot be written only costs a recompile next time.
        let _ = std::fs::create_dir_all(path.parent().unwrap())
            .and_then(|_| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, ptx.to_src())?;
                std::fs::rename(&tmp, &path)
            })
            .context("kernel cache");
    }
    Ok(ptx)
}
