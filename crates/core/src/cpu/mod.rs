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
pub use loss::{bce_logits, bce_rows};
pub(crate) use matmul::strided;
pub use matmul::{matmul, matmul_a_bt, matmul_at_b};
pub use reduce::{accumulate_add, column_sums, column_sums_of};
pub use simd::{cpu_model, simd_level};

/// Rows (or elements / 1024) per parallel chunk: fixed, for determinism.
pub(crate) const CHUNK: usize = 64;

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the products and their epilogues on the calling thread
/// alone: for a share of a step the host already splits across its threads
/// (`HostDevice::replay`), where the products' nested fork/join would only
/// wake the other cores. (The elementwise passes still split into rayon
/// tasks; the other threads are busy with their own shares or waiting at a
/// barrier, so those run here too.) The results are the same bits either
/// way.
pub fn serially<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let out = f();
    SERIAL.with(|s| s.set(before));
    out
}

/// Runs `f` with this thread's SSE/AVX control word set to flush
/// subnormal results to zero and read subnormal inputs as zero (MXCSR FTZ
/// and DAZ), then restores it. Trained weights, gradients and Adam's
/// moments drift into the subnormal range (below 1.2e-38) as training
/// goes on, and on Intel cores every instruction that meets one takes a
/// microcode assist: the lab's epochs slowed from 0.33 s to 0.53 s from the
/// fourth epoch on. The values flushed are far below anything the loss can
/// see (the lab's history keeps its bits).
pub fn with_subnormals_flushed<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        let mut saved: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's MXCSR only;
        // the bits set (FTZ 0x8000, DAZ 0x0040) change no other state, and
        // the saved word is put back below.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack));
            let flushing = saved | 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &flushing, options(nostack));
        }
        struct Restore(u32);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: as above.
                unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &self.0, options(nostack)) };
            }
        }
        let _restore = Restore(saved);
        f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    f()
}

/// Whether an op may split its work across the thread pool here.
pub(crate) fn may_fork() -> bool {
    !SERIAL.with(|s| s.get())
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn subnormals_flush_inside_and_come_back_after() {
        let tiny = || black_box(1e-30f32) * black_box(1e-10f32);
        assert!(tiny() > 0.0, "1e-40 is a subnormal here");
        let inside = super::with_subnormals_flushed(tiny);
        assert_eq!(inside, 0.0);
        let read = super::with_subnormals_flushed(|| black_box(1e-40f32) * black_box(1.0f32));
        assert_eq!(read, 0.0, "a subnormal input reads as zero");
        assert!(tiny() > 0.0, "the control word is restored");
    }
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
