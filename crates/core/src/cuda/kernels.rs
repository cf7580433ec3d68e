//! Launching plans (`ops::Launch`) on a GPU: every kernel of kernels/,
//! compiled by NVRTC and loaded into one context, looked up by name; every
//! launch's result is checked. Arguments are raw device addresses (u64), so
//! the same launches work eagerly and inside CUDA-graph capture.

use super::compile::{compile, kernel_sources, CompileOptions};
use crate::ops::{kernel_names, Arg, Launch};
use crate::{err, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::Arc;

/// Every kernel of kernels/, loaded into one context.
pub struct Kernels {
    functions: HashMap<&'static str, CudaFunction>,
}

impl Kernels {
    pub fn load(ctx: &Arc<CudaContext>, cc: (i32, i32), options: &CompileOptions) -> Result<Self> {
        let mut modules = Vec::new();
        for (file, src) in kernel_sources() {
            let cubin = compile(file, src, cc, options)?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(cubin))
                .map_err(|e| err!(Cuda, "the driver refused the CUBIN of kernels/{file}: {e} (an NVRTC newer than the driver makes code the driver cannot load)"))?;
            modules.push(module);
        }
        let mut functions = HashMap::new();
        for name in kernel_names() {
            let func = modules
                .iter()
                .find_map(|m| m.load_function(name).ok())
                .ok_or_else(|| err!(Cuda, "kernel {name} not found in kernels/"))?;
            functions.insert(name, func);
        }
        Ok(Kernels { functions })
    }

    /// Enqueues one launch on `s`.
    pub fn launch(&self, s: &CudaStream, l: &Launch) -> Result<()> {
        let func = self
            .functions
            .get(l.kernel)
            .ok_or_else(|| err!(Cuda, "kernel {} is not loaded", l.kernel))?;
        let mut b = s.launch_builder(func);
        for a in &l.args {
            match a {
                Arg::Ptr(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::F64(v) => b.arg(v),
            };
        }
        let cfg = LaunchConfig {
            grid_dim: l.grid,
            block_dim: l.block,
            shared_mem_bytes: 0,
        };
        // SAFETY: the op families (crates/core/src/ops) build each argument list from the kernel's
        // signature (kernels/README.md) and the caller sized every buffer for
        // the op's shapes; the emulator's tests (crates/emu) run the same
        // plans against the kernels' own parameter lists.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| err!(Cuda, "launch of {} failed: {e}", l.kernel))
    }
}
