//! The host as a `KernelDevice`: buffers in host memory, each op run by its
//! CPU implementation (`Op::run_on_host`). This is the CPU backend's device:
//! the training step the GPU records as a graph, the CPU runs op by op with
//! its fast CPU kernels. Tensor-core products get their operands first
//! rounded as the tensor cores round them (tf32: 11 significant bits, to
//! nearest, ties away; bf16: 8, ties to even), so the kernel suite's bounds
//! are swept over many seeds on it: the kernels' contracts checked against
//! a second, independent implementation.

use crate::ops::{HostPart, HostParts, Op};
use crate::{fail, KernelDevice, Precision, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs an op in place of the plain host execution, given that execution
/// (for tests that plant a bug in one op).
pub type OpHook = Box<dyn Fn(&Op, &dyn Fn(&Op) -> Result<()>) -> Result<()>>;

pub struct HostDevice {
    sm_count: usize,
    hook: Option<OpHook>,
    /// Whether `timed` reports wall-clock time (ops run synchronously here,
    /// so the wall clock times exactly the work); off by default, so the
    /// CPU reports no device time where a GPU reports its events.
    clock: bool,
    /// The replay's scratch, kept between steps (it is written before it
    /// is read, so it needs no clearing).
    scratch: Mutex<Vec<f64>>,
}

impl HostDevice {
    /// `sm_count` only shapes the launch plans' scratch sizes here.
    pub fn new(sm_count: usize) -> Self {
        HostDevice {
            sm_count,
            hook: None,
            clock: false,
            scratch: Mutex::new(Vec::new()),
        }
    }

    /// A host device whose every op goes through `hook`.
    pub fn with_hook(sm_count: usize, hook: OpHook) -> Self {
        HostDevice {
            hook: Some(hook),
            ..Self::new(sm_count)
        }
    }

    /// A host device that times its work by the wall clock (for the
    /// per-op profile of a CPU step).
    pub fn with_clock(sm_count: usize) -> Self {
        HostDevice {
            clock: true,
            ..Self::new(sm_count)
        }
    }

    fn execute(op: &Op) -> Result<()> {
        // SAFETY: callers size every buffer for the op's shapes (the
        // KernelDevice contract); the rounded copies live until the op ran.
        unsafe {
            let (op, _keep) = with_rounded_operands(op);
            op.run_on_host();
        }
        Ok(())
    }
}

/// x rounded to tf32 (cvt.rna.tf32.f32): 13 low mantissa bits dropped,
/// to nearest, ties away from zero.
pub fn round_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    f32::from_bits(x.to_bits().wrapping_add(0x1000) & !0x1fff)
}

/// x rounded to bf16 (cvt.rn.bf16.f32): to nearest, ties to even.
pub fn round_bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

/// A copy of `len` f32s at `addr` rounded for `p` (None for fp32).
///
/// # Safety
/// `addr` must point to `len` initialised f32s.
unsafe fn rounded(p: Precision, addr: u64, len: usize) -> Option<Vec<f32>> {
    let round = match p {
        Precision::Fp32 => return None,
        Precision::Tf32 => round_tf32,
        Precision::Bf16 => round_bf16,
    };
    let v = std::slice::from_raw_parts(addr as *const f32, len);
    Some(v.iter().map(|&x| round(x)).collect())
}

/// `op` with its product operands replaced by rounded copies (kept alive in
/// the returned vectors).
///
/// # Safety
/// The op's operand addresses must hold the sizes its shapes imply.
unsafe fn with_rounded_operands(op: &Op) -> (Op, Vec<Vec<f32>>) {
    let mut keep = Vec::new();
    let mut swap = |p, addr: &mut u64, len| {
        if let Some(v) = rounded(p, *addr, len) {
            *addr = v.as_ptr() as u64;
            keep.push(v);
        }
    };
    let mut op = op.clone();
    match &mut op {
        Op::GemmFwd(o) => {
            swap(o.p, &mut o.x, o.shape.x_len());
            swap(o.p, &mut o.w, o.shape.w_len());
        }
        Op::GemmDx(o) => {
            swap(o.p, &mut o.dy, o.shape.y_len());
            swap(o.p, &mut o.w, o.shape.w_len());
        }
        Op::GemmDw(o) => {
            swap(o.p, &mut o.x, o.shape.x_len());
            swap(o.p, &mut o.dy, o.shape.y_len());
        }
        _ => {}
    }
    (op, keep)
}

/// Runs a recorded step on `threads` threads at once, each thread walking
/// the whole op list: every thread takes the same share of the rows in
/// every row op (`HostParts::Rows`), so a row block flows from the gather
/// through the forward products, the loss, and back through the weight
/// and input gradients, in one core's cache with no synchronisation
/// between those ops. The weight and bias gradients (`RowSums`) are each
/// thread's partial over its rows, added in thread order at the next
/// barrier, before the optimizer reads them; the other ops are shared out
/// (`Split`) or run by one thread (`Whole`) between barriers. One fork and
/// join per step instead of one per product.
///
/// # Safety
/// As [`Kernel::run_on_host`] for every op.
///
/// [`Kernel::run_on_host`]: crate::ops::Kernel::run_on_host
unsafe fn replay_in_parts(graph: &[Op], threads: usize, scratch: &mut Vec<f64>) {
    let parts: Vec<HostParts> = graph.iter().map(Op::host_parts).collect();
    // A barrier before each op unless it and the one before are row ops
    // over the same rows.
    let barrier_before: Vec<bool> = (0..graph.len())
        .map(|i| i > 0 && (parts[i - 1].rows().is_none() || parts[i - 1].rows() != parts[i].rows()))
        .collect();
    // Each op's scratch after the one before's: the partials of every op
    // waiting for a finish live at once.
    let mut offsets = Vec::with_capacity(graph.len());
    let mut finishes = Vec::with_capacity(graph.len());
    let mut total = 0;
    for op in graph {
        let len = op.host_scratch(threads);
        offsets.push(total);
        finishes.push(len > 0);
        total += len;
    }
    // Every word is written by an op's shares before its finish reads it.
    scratch.resize(total, 0.0);
    let scratch_at = SendPtr(scratch.as_mut_ptr());
    let barrier = SpinBarrier::new(threads);
    rayon::broadcast(|ctx| {
        let _poison = PoisonOnPanic(&barrier);
        let scratch_at = &scratch_at;
        let part = |i: usize| HostPart {
            index: ctx.index(),
            count: ctx.num_threads(),
            scratch: scratch_at.0.add(offsets[i]),
        };
        // Ops run whose finish waits for the next barrier.
        let mut unfinished: Vec<usize> = Vec::new();
        let finish = |unfinished: &mut Vec<usize>| {
            if !unfinished.is_empty() {
                barrier.wait();
                for j in unfinished.drain(..) {
                    graph[j].finish_on_host_part(&part(j));
                }
            }
        };
        crate::cpu::serially(|| {
            crate::cpu::with_subnormals_flushed(|| {
                for (i, op) in graph.iter().enumerate() {
                    if barrier_before[i] {
                        finish(&mut unfinished);
                        barrier.wait();
                    }
                    match parts[i] {
                        HostParts::Whole => {
                            if ctx.index() == 0 {
                                HostDevice::execute(op).expect("host ops do not fail");
                            }
                        }
                        HostParts::Rows(_) | HostParts::RowSums(_) | HostParts::Split => {
                            op.run_on_host_part(&part(i))
                        }
                    }
                    if finishes[i] {
                        unfinished.push(i);
                    }
                }
                finish(&mut unfinished);
            })
        })
    });
}

/// A raw pointer the threads of one replay share (each writes its own
/// elements, between barriers).
struct SendPtr(*mut f64);
// SAFETY: the replay's threads write disjoint elements and read them only
// after a barrier.
unsafe impl Sync for SendPtr {}

/// A barrier for the few threads of one replay, which wait microseconds:
/// it spins (then yields, so an oversubscribed machine still progresses)
/// where a futex wake-up would cost more than most ops. A thread that
/// panics poisons it, so the others panic too instead of waiting forever.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("another thread of the host replay panicked");
            }
            spins += 1;
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

impl KernelDevice for HostDevice {
    /// u128s: 16-byte aligned, as the kernels' vector paths assume.
    type Memory = Vec<u128>;
    type Graph = Vec<Op>;

    fn describe(&self) -> String {
        "host: the CPU ops on host memory".into()
    }
    fn runs_in_host_memory(&self) -> bool {
        true
    }
    fn sm_count(&self) -> usize {
        self.sm_count
    }
    fn alloc(&self, bytes: usize) -> Result<Vec<u128>> {
        Ok(vec![0; bytes.div_ceil(16).max(1)])
    }
    fn address(&self, mem: &Vec<u128>) -> u64 {
        mem.as_ptr() as u64
    }
    fn write(&self, mem: &mut Vec<u128>, data: &[u8]) -> Result<()> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(mem);
        if data.len() > bytes.len() {
            fail!(Plan, "write of {} bytes into {}", data.len(), bytes.len());
        }
        bytes[..data.len()].copy_from_slice(data);
        Ok(())
    }
    fn read(&self, mem: &Vec<u128>, len: usize) -> Result<Vec<u8>> {
        let bytes: &[u8] = bytemuck::cast_slice(mem);
        if len > bytes.len() {
            fail!(Plan, "read of {len} bytes from {}", bytes.len());
        }
        Ok(bytes[..len].to_vec())
    }
    fn run(&self, op: &Op) -> Result<()> {
        match &self.hook {
            Some(hook) => hook(op, &Self::execute),
            None => Self::execute(op),
        }
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn record(&self, ops: &[Op]) -> Result<Vec<Op>> {
        Ok(ops.to_vec())
    }
    fn replay(&self, graph: &Vec<Op>) -> Result<()> {
        let threads = rayon::current_num_threads();
        // A replay inside another's share runs on its thread alone. (One
        // replay runs at a time per pool: concurrent ones from parallel jobs
        // would each wait at their barriers for threads the other holds.)
        if self.hook.is_some() || threads == 1 || graph.len() < 2 || !crate::cpu::may_fork() {
            return crate::cpu::with_subnormals_flushed(|| {
                graph.iter().try_for_each(|op| self.run(op))
            });
        }
        // A replay already holding the scratch (another job's) leaves this
        // one a fresh buffer rather than a wait.
        let mut fresh = Vec::new();
        let mut cached = self.scratch.try_lock();
        let scratch = match cached.as_deref_mut() {
            Ok(v) => v,
            Err(_) => &mut fresh,
        };
        // SAFETY: as `execute`: callers size every buffer for the ops.
        unsafe { replay_in_parts(graph, threads, scratch) };
        Ok(())
    }
    fn timed<R, E: From<crate::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E> {
        let start = std::time::Instant::now();
        let out = work()?;
        Ok((out, self.clock.then(|| start.elapsed().as_secs_f64() * 1e3)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clocked_host_reports_time() {
        let work = || Ok::<u8, crate::Error>(7);
        assert_eq!(HostDevice::new(1).timed(work).unwrap(), (7, None));
        let (out, ms) = HostDevice::with_clock(1).timed(work).unwrap();
        assert!(out == 7 && ms.is_some_and(|ms| ms >= 0.0));
    }

    #[test]
    fn tensor_core_roundings() {
        // 1 + 2⁻¹¹ is a tf32 tie: away from zero; bf16 ties go to even.
        let tie = 1.0 + 2f32.powi(-11);
        assert_eq!(round_tf32(tie), 1.0 + 2f32.powi(-10));
        assert_eq!(round_tf32(-tie), -(1.0 + 2f32.powi(-10)));
        assert_eq!(round_tf32(1.0 + 2f32.powi(-12)), 1.0);
        assert_eq!(round_bf16(1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(round_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert!(round_tf32(f32::NAN).is_nan());
        for x in [0.1f32, -3.7, 1e-30, 6.5e4] {
            assert!(((round_tf32(x) - x) / x).abs() <= 2f32.powi(-11));
            assert!(((round_bf16(x) - x) / x).abs() <= 2f32.powi(-8));
        }
    }
}
