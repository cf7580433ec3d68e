//! The CPU implementation of every op: the fallback device and the reference
//! path that the GPU is checked against end to end. Matrix products go
//! through the `gemm` crate (AVX-512 where present, all cores via rayon);
//! elementwise ops and reductions are split into fixed-size chunks whose
//! results combine in a fixed order, so each op's results do not depend on
//! the number of threads. A replayed training step is shared out by rows
//! across the threads (`HostDevice::replay`), each share a product of its
//! own: a step's bits follow the thread count (same count, same bits).

mod adam;
mod dense;
mod fastmath;
mod gather;
mod lamb;
mod loss;
mod matmul;
mod reduce;
mod simd;

pub use adam::adam_step;
pub use dense::{bias_activation, dense_backward_input, dense_forward};
pub use gather::{gather, Pixels};
pub use lamb::{lamb_bias_corrections, lamb_step};
pub use loss::{bce_chunk_count, bce_chunks, bce_logits};
pub(crate) use matmul::strided;
pub use matmul::{matmul, matmul_a_bt, matmul_at_b, matmul_at_b_rows};
pub use reduce::{accumulate_add, column_sums, column_sums_of};

/// Rows (or elements / 1024) per parallel chunk: fixed, for determinism.
pub(crate) const CHUNK: usize = 64;

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every CPU op on the calling thread alone: for a part of a
/// step the host already splits across its threads (`HostDevice::replay`),
/// where a nested fork/join would only wake the other threads' cores. The
/// results are the same bits either way.
pub fn serially<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let out = f();
    SERIAL.with(|s| s.set(before));
    out
}

/// Whether an op may split its work across the thread pool here.
pub(crate) fn may_fork() -> bool {
    !SERIAL.with(|s| s.get())
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::rng::{Purpose, Rng};

    /// Fresh random values in [-1, 1): each call a different stream.
    pub fn random(len: usize, tag: u64) -> Vec<f32> {
        let mut rng = Rng::new(0xC0FFEE, Purpose::Test, tag);
        (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
    }

    /// Awkward shapes: ones, primes, and sizes around tile boundaries.
    pub const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 7, 3),
        (5, 1, 9),
        (17, 33, 65),
        (64, 64, 64),
        (257, 131, 67),
        (300, 784, 128),
        (256, 32, 64),
        (129, 128, 784),
    ];
}
