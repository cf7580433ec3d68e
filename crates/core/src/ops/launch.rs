//! One kernel launch described by value: kernel, grid, block and
//! arguments. Every op family's plan (`gemm.rs`, `reduce.rs`, ...) builds
//! these as pure functions of the op and the SM count, so the same plan runs
//! on a GPU (`cuda::Kernels`) and in the host emulator (crates/emu), and can
//! be inspected in tests.

use crate::Error;

/// One kernel argument, by value (device addresses as u64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Ptr(u64),
    I32(i32),
    F32(f32),
    F64(f64),
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub args: Vec<Arg>,
}

pub(crate) fn cdiv(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// A size as the kernels' `int`.
pub(crate) fn int(v: usize) -> Result<Arg, Error> {
    i32::try_from(v)
        .map(Arg::I32)
        .map_err(|_| Error::TooLarge(format!("size {v} exceeds the kernels' int range")))
}

/// A 1-D block of `block` threads over `grid`.
pub(crate) fn launch(
    kernel: &'static str,
    grid: (usize, usize, usize),
    block: u32,
    args: Vec<Arg>,
) -> Launch {
    Launch {
        kernel,
        grid: (grid.0 as u32, grid.1 as u32, grid.2 as u32),
        block: (block, 1, 1),
        args,
    }
}

/// Grid of the grid-stride elementwise kernels (split-K finishes, Adam): a
/// float4 per thread, at most 4 blocks per SM.
pub(crate) fn elementwise_grid(count: usize, sm_count: usize) -> (usize, usize, usize) {
    (cdiv(count, 1024).clamp(1, 4 * sm_count), 1, 1)
}
