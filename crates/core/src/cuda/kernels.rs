//! Launching plans (`ops::Launch`) on a GPU: every kernel of kernels/,
//! compiled by NVRTC and loaded into one context, looked up by name; every
//! launch's arguments are checked against the kernel's signature first
//! (`ops::signature`) and its result after. Arguments are raw device
//! addresses (u64), so the same launches work eagerly and inside CUDA-graph
//! capture.

use super::compile::{compile, kernel_sources, CompileOptions};
use crate::ops::{signature, Arg, Launch};
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
        let mut modules = HashMap::new();
        for (file, src) in kernel_sources() {
            let cubin = compile(file, src, cc, options)?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(cubin))
                .map_err(|e| err!(Cuda, "the driver refused the CUBIN of kernels/{file}: {e} (an NVRTC newer than the driver makes code the driver cannot load)"))?;
            modules.insert(*file, module);
        }
        let mut functions = HashMap::new();
        for k in signature::KERNELS {
            let func = modules
                .get(k.file)
                .and_then(|m| m.load_function(k.name).ok())
                .ok_or_else(|| err!(Cuda, "kernel {} not found in kernels/{}", k.name, k.file))?;
            functions.insert(k.name, func);
        }
        Ok(Kernels { functions })
    }

    /// Enqueues one launch on `s`.
    pub fn launch(&self, s: &CudaStream, l: &Launch) -> Result<()> {
        signature::check(l)?;
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
        // SAFETY: the argument kinds and count were checked above against the
        // kernel's own parameter list (parsed from its .cu file at build
        // time), and the caller sized every buffer for the op's shapes.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| err!(Cuda, "launch of {} failed: {e}", l.kernel))
    }
}
