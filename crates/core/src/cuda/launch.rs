//! Running launch plans (`plan.rs`) on a GPU: every kernel of kernels/,
//! compiled by NVRTC and loaded into one context, looked up by name; every
//! launch's result is checked. Arguments are raw device addresses (u64), so
//! the same launches work eagerly and inside CUDA-graph capture.

use super::compile::{compile, kernel_sources, lineinfo_requested};
use super::plan::{kernel_names, Arg, Launch};
use anyhow::{anyhow, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::Arc;

/// Every kernel of kernels/, loaded into one context.
pub struct Kernels {
    functions: HashMap<&'static str, CudaFunction>,
    sm_count: usize,
}

impl Kernels {
    pub fn load(ctx: &Arc<CudaContext>, cc: (i32, i32), sm_count: u32) -> Result<Self> {
        let mut modules = Vec::new();
        let lineinfo = lineinfo_requested();
        for (file, src) in kernel_sources() {
            let cubin = compile(file, src, cc, lineinfo)?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(cubin))
                .map_err(|e| anyhow!("the driver refused the CUBIN of kernels/{file}: {e} (an NVRTC newer than the driver makes code the driver cannot load)"))?;
            modules.push(module);
        }
        let mut functions = HashMap::new();
        for name in kernel_names() {
            let func = modules
                .iter()
                .find_map(|m| m.load_function(name).ok())
                .ok_or_else(|| anyhow!("kernel {name} not found in kernels/"))?;
            functions.insert(name, func);
        }
        Ok(Kernels {
            functions,
            sm_count: sm_count as usize,
        })
    }

    pub fn sm_count(&self) -> usize {
        self.sm_count
    }

    /// Enqueues one launch on `s`.
    pub fn run(&self, s: &CudaStream, l: &Launch) -> Result<()> {
        let func = self
            .functions
            .get(l.kernel)
            .ok_or_else(|| anyhow!("kernel {} is not loaded", l.kernel))?;
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
        // SAFETY: plan.rs builds each argument list from the kernel's
        // signature (kernels/README.md) and the caller sized every buffer for
        // the op's shapes; the emulator's tests (crates/emu) run the same
        // plans against the kernels' own parameter lists.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| anyhow!("launch of {} failed: {e}", l.kernel))
    }
}
