//! Every kernel's signature, read from kernels/*.cu at build time (build.rs,
//! through build/kernel_signatures.rs), and the check each launch passes
//! before it reaches a GPU: an argument list that drifted from the kernel's
//! parameters is an error here, never undefined behaviour on the device.
//!
//! Test-only kernels (launched by tests, never by an op family) are marked
//! in their .cu file by a `// test-only` line directly above them.

use super::{Arg, Launch};
use crate::{err, Result};

/// How a kernel parameter is passed: the kind of its `Arg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Ptr,
    I32,
    F32,
    F64,
}

impl ArgKind {
    pub fn of(arg: &Arg) -> ArgKind {
        match arg {
            Arg::Ptr(_) => ArgKind::Ptr,
            Arg::I32(_) => ArgKind::I32,
            Arg::F32(_) => ArgKind::F32,
            Arg::F64(_) => ArgKind::F64,
        }
    }
}

/// One `extern "C" __global__` kernel of kernels/.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSignature {
    pub name: &'static str,
    /// Its file in kernels/ ("gemm_tc.cu").
    pub file: &'static str,
    pub args: &'static [ArgKind],
    /// Marked `// test-only` in its file: no op family launches it.
    pub test_only: bool,
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The kernel named `name`, if kernels/ has one.
pub fn lookup(name: &str) -> Option<&'static KernelSignature> {
    KERNELS.iter().find(|k| k.name == name)
}

/// Ok when `launch` names a kernel of kernels/ and passes exactly its
/// parameters' kinds, in order.
pub fn check(launch: &Launch) -> Result<()> {
    let sig = lookup(launch.kernel)
        .ok_or_else(|| err!(Plan, "no kernel named {} in kernels/*.cu", launch.kernel))?;
    let kinds: Vec<ArgKind> = launch.args.iter().map(ArgKind::of).collect();
    if kinds.len() != sig.args.len() {
        return Err(err!(
            Plan,
            "launch of {} passes {} arguments; kernels/{} declares {} parameters {:?}",
            sig.name,
            kinds.len(),
            sig.file,
            sig.args.len(),
            sig.args
        ));
    }
    if let Some(i) = (0..kinds.len()).find(|&i| kinds[i] != sig.args[i]) {
        return Err(err!(
            Plan,
            "launch of {}: parameter {i} is {:?} in kernels/{}, launched with {:?}",
            sig.name,
            sig.args[i],
            sig.file,
            kinds[i]
        ));
    }
    Ok(())
}
