//! kernels/*.cu compiled for the host (build.rs, csrc/) and run on the CPU:
//! every CUDA thread a fiber, each launch exactly as `Op::launches` plans it
//! for a GPU of a chosen SM count. It runs the kernel regression suite
//! (`dae_core::cuda::check`) and the train step's op list without a GPU, so
//! CI checks the kernels' own indexing, edge tiles, split-K paths and
//! epilogues, and the launch plans' grids and argument lists.
//!
//! Memory is host memory with poisoned guard zones around every allocation:
//! a write past either end fails the op that did it; a read there sees NaN
//! (or a wild index), which fails the comparison. The build's sanitizer flags
//! turn misaligned vector accesses and out-of-range array indices into aborts.
//!
//! Shared memory is race-checked: the kernels are compiled with GCC's
//! ThreadSanitizer instrumentation, whose callbacks (csrc/runtime.cpp)
//! record every shared-memory access with its thread and barrier interval;
//! two threads' conflicting accesses to one word in one interval fail the
//! launch whatever order the fibers run in.
//!
//! The MMA's rounding is modelled two ways ([`MmaModel`]): exact products
//! summed exactly, or the tensor cores' align-and-truncate accumulation.
//!
//! What it cannot show: the hardware's exact MMA bits (the truncating model
//! follows a published study, not this GPU), timing, races in global
//! memory, and anything of the driver, NVRTC or graphs.

use dae_core::ops::Op;
use dae_core::ops::{Arg, Launch};
use dae_core::KernelDevice;
use dae_core::{err, fail, Result};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::rc::{Rc, Weak};

extern "C" {
    fn dae_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        args: *mut *mut c_void,
        arg_codes: *const u32,
        arg_count: u32,
        reverse: c_int,
        mma_model: c_int,
        trace: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn dae_emu_trace_ranges(ranges: *const u64, count: usize);
    fn dae_emu_trace_take(out: *mut c_char, len: usize) -> usize;
}

/// Shared-memory and global-memory traffic of one instruction site of one
/// kernel, summed over the traced launches (csrc/runtime.cpp's counters):
/// a request is one warp's execution of the site.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub kernel: String,
    /// The host function and offset of the access (csrc/runtime.cpp names
    /// them from the symbol table; stable for one compiler and build).
    pub site: String,
    pub shared: bool,
    pub store: bool,
    /// Bytes each lane accesses.
    pub width: u32,
    pub requests: u64,
    /// Shared: wavefronts (1 per request when conflict-free, for 4-byte lanes).
    pub wavefronts: u64,
    /// Global: 32-byte sectors and 128-byte lines touched.
    pub sectors: u64,
    pub lines: u64,
    /// Bytes the lanes asked for.
    pub bytes: u64,
}

impl TraceRow {
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| f.get(i)?.parse::<u64>().ok();
        Some(TraceRow {
            kernel: f.first()?.to_string(),
            site: f.get(1)?.to_string(),
            shared: *f.get(2)? == "shared",
            store: *f.get(3)? == "st",
            width: n(4)? as u32,
            requests: n(5)?,
            wavefronts: n(6)?,
            sectors: n(7)?,
            lines: n(8)?,
            bytes: n(9)?,
        })
    }
}

/// Guard bytes on each side of an allocation (0xFF: NaN as f32 and f64).
const GUARD: usize = 4096;
/// cudaMalloc's alignment, so the kernels' 16-byte fast paths are taken as
/// on a GPU.
const ALIGN: usize = 256;
const POISON: u8 = 0xFF;

/// One allocation: [guard | bytes | guard].
pub struct HostMemory {
    base: *mut u8,
    bytes: usize,
    layout: Layout,
}

impl HostMemory {
    fn new(bytes: usize) -> Result<Self> {
        let layout = Layout::from_size_align(bytes + 2 * GUARD, ALIGN)
            .map_err(|e| err!(TooLarge, "emulator allocation of {bytes} bytes: {e}"))?;
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        if base.is_null() {
            fail!(
                Plan,
                "cannot allocate {bytes} bytes of emulated device memory"
            );
        }
        let m = HostMemory {
            base,
            bytes,
            layout,
        };
        m.poison_guards();
        Ok(m)
    }

    fn poison_guards(&self) {
        // SAFETY: both guards lie inside the allocation.
        unsafe {
            std::ptr::write_bytes(self.base, POISON, GUARD);
            std::ptr::write_bytes(self.base.add(GUARD + self.bytes), POISON, GUARD);
        }
    }

    fn address(&self) -> u64 {
        self.base as u64 + GUARD as u64
    }

    /// Which guard (if any) a kernel wrote into.
    fn damaged_guard(&self) -> Option<&'static str> {
        // SAFETY: the guards lie inside the allocation; nothing else borrows them.
        let (before, after) = unsafe {
            (
                std::slice::from_raw_parts(self.base, GUARD),
                std::slice::from_raw_parts(self.base.add(GUARD + self.bytes), GUARD),
            )
        };
        if before.iter().any(|&b| b != POISON) {
            Some("before")
        } else if after.iter().any(|&b| b != POISON) {
            Some("after")
        } else {
            None
        }
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) }
    }
}

/// How the emulated tensor cores accumulate an MMA's products (csrc/runtime.cpp).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MmaModel {
    /// The products (exact) summed exactly, then rounded once to nearest:
    /// the ideal the tolerances are stated against.
    #[default]
    Exact,
    /// As the hardware does (Fasi, Higham, Mikaitis, Pranesh, "Numerical
    /// behavior of NVIDIA tensor cores", PeerJ CS 2021): products added to
    /// the accumulator 4 (tf32) or 8 (bf16) at a time, aligned to the
    /// largest exponent and truncated to 24 bits, the sum truncated to fp32.
    Truncate,
}

impl MmaModel {
    /// `DAE_EMU_MMA` (`exact`, the default, or `truncate`), for the tests:
    /// CI runs the emulator suite under both.
    pub fn from_env() -> Self {
        match std::env::var("DAE_EMU_MMA").as_deref() {
            Err(_) | Ok("exact") => MmaModel::Exact,
            Ok("truncate") => MmaModel::Truncate,
            Ok(other) => panic!("DAE_EMU_MMA={other}: expected exact or truncate"),
        }
    }
}

/// A CPU standing in for a GPU with `sm_count` SMs.
///
/// Each kernel's successive launches alternate the order in which a block's
/// threads run between barriers (first in thread order, then reversed, ...):
/// a result that depends on that order (beyond the shared-memory races the
/// race detector fails outright) gives different bits on the next run,
/// which the regression suite's run-twice bit-equality check reports.
pub struct Emulator {
    sm_count: usize,
    mma: MmaModel,
    trace: bool,
    live: RefCell<Vec<Weak<HostMemory>>>,
    launches: RefCell<HashMap<&'static str, u64>>,
}

impl Emulator {
    /// An emulated GPU whose launch plans are those of `sm_count` SMs (132:
    /// an H100 SXM's, so the split-K choices are the ones it would make).
    pub fn new(sm_count: usize) -> Self {
        Emulator {
            sm_count,
            mma: MmaModel::Exact,
            trace: false,
            live: RefCell::new(Vec::new()),
            launches: RefCell::new(HashMap::new()),
        }
    }

    /// Bytes of the allocations still alive (guard zones not counted): what
    /// a device's memory would hold.
    pub fn live_bytes(&self) -> usize {
        let mut live = self.live.borrow_mut();
        live.retain(|w| w.strong_count() > 0);
        live.iter().filter_map(Weak::upgrade).map(|m| m.bytes).sum()
    }

    /// The same emulator with another model of the tensor cores' accumulation.
    pub fn with_mma(self, mma: MmaModel) -> Self {
        Emulator { mma, ..self }
    }

    /// The same emulator counting shared wavefronts and global sectors per
    /// kernel and site ([`Emulator::take_trace`]). The counters are the
    /// process's: trace in one emulator at a time.
    pub fn with_trace(self) -> Self {
        Emulator {
            trace: true,
            ..self
        }
    }

    /// The traced launches' counters since the last call (then cleared).
    pub fn take_trace(&self) -> Vec<TraceRow> {
        // SAFETY: a null buffer of length 0 only asks for the length.
        let len = unsafe { dae_emu_trace_take(std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; len + 1];
        // SAFETY: buf holds len + 1 bytes, room for the text and its NUL.
        let len = unsafe { dae_emu_trace_take(buf.as_mut_ptr().cast::<c_char>(), buf.len()) };
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .filter_map(TraceRow::parse)
            .collect()
    }

    /// Runs one launch to completion.
    pub fn launch(&self, l: &Launch) -> Result<()> {
        let name = CString::new(l.kernel).map_err(|e| err!(Plan, "kernel name: {e}"))?;
        let mut slots: Vec<[u8; 8]> = l
            .args
            .iter()
            .map(|a| {
                let mut s = [0u8; 8];
                match *a {
                    Arg::Ptr(v) => s.copy_from_slice(&v.to_ne_bytes()),
                    Arg::I32(v) => s[..4].copy_from_slice(&v.to_ne_bytes()),
                    Arg::F32(v) => s[..4].copy_from_slice(&v.to_ne_bytes()),
                    Arg::F64(v) => s.copy_from_slice(&v.to_ne_bytes()),
                }
                s
            })
            .collect();
        // Kind and size of each argument, as csrc/cuda_host.h's param_code.
        let codes: Vec<u32> = l
            .args
            .iter()
            .map(|a| match a {
                Arg::Ptr(_) => u32::from(b'p') * 16 + 8,
                Arg::I32(_) => u32::from(b'i') * 16 + 4,
                Arg::F32(_) => u32::from(b'f') * 16 + 4,
                Arg::F64(_) => u32::from(b'f') * 16 + 8,
            })
            .collect();
        let mut args: Vec<*mut c_void> = slots
            .iter_mut()
            .map(|s| s.as_mut_ptr().cast::<c_void>())
            .collect();
        let grid = [l.grid.0, l.grid.1, l.grid.2];
        let block = [l.block.0, l.block.1, l.block.2];
        let reverse = {
            let mut launches = self.launches.borrow_mut();
            let n = launches.entry(l.kernel).or_insert(0);
            *n += 1;
            n.is_multiple_of(2)
        };
        if self.trace {
            let ranges: Vec<u64> = self
                .live
                .borrow()
                .iter()
                .filter_map(Weak::upgrade)
                .flat_map(|m| [m.address(), m.bytes as u64])
                .collect();
            // SAFETY: `ranges` holds ranges.len() / 2 (start, bytes) pairs.
            unsafe { dae_emu_trace_ranges(ranges.as_ptr(), ranges.len() / 2) };
        }
        let mut err = vec![0u8; 512];
        // SAFETY: `args` holds one 8-byte slot per argument and `codes` their
        // kinds and sizes; the runtime checks both against the kernel's own
        // parameter list before reading a slot as the parameter's type. The
        // pointers inside are addresses of live HostMemory, sized by the
        // caller for the op's shapes.
        let rc = unsafe {
            dae_emu_launch(
                name.as_ptr(),
                grid.as_ptr(),
                block.as_ptr(),
                args.as_mut_ptr(),
                codes.as_ptr(),
                codes.len() as u32,
                c_int::from(reverse),
                c_int::from(self.mma == MmaModel::Truncate),
                c_int::from(self.trace),
                err.as_mut_ptr().cast::<c_char>(),
                err.len(),
            )
        };
        if rc != 0 {
            let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
            fail!(
                Plan,
                "emulated {}: {}",
                l.kernel,
                String::from_utf8_lossy(&err[..end])
            );
        }
        self.check_guards(l.kernel)
    }

    fn check_guards(&self, kernel: &str) -> Result<()> {
        let mut live = self.live.borrow_mut();
        live.retain(|w| w.strong_count() > 0);
        for m in live.iter().filter_map(Weak::upgrade) {
            if let Some(side) = m.damaged_guard() {
                // Reported once: later launches are judged on their own writes.
                m.poison_guards();
                fail!(
                    Plan,
                    "{kernel} wrote outside an allocation: {side} the {} bytes at {:#x}",
                    m.bytes,
                    m.address()
                );
            }
        }
        Ok(())
    }
}

impl KernelDevice for Emulator {
    fn info(&self) -> dae_core::DeviceInfo {
        dae_core::DeviceInfo {
            kind: "emulator".into(),
            name: "dae host emulator (kernels/*.cu on the CPU)".into(),
            sm_count: self.sm_count,
            ..Default::default()
        }
    }

    type Memory = Rc<HostMemory>;
    /// A recording is the op list itself: replaying runs it again, with the
    /// same addresses, as a CUDA graph replays its launches.
    type Graph = Vec<Op>;

    fn describe(&self) -> String {
        format!(
            "emulator: kernels/*.cu on the host CPU, launch plans of {} SMs",
            self.sm_count
        )
    }

    /// Launches run to completion: nothing is ever queued.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn record(&self, ops: &[Op]) -> Result<Vec<Op>> {
        Ok(ops.to_vec())
    }

    fn replay(&self, graph: &Vec<Op>) -> Result<()> {
        graph.iter().try_for_each(|op| self.run(op))
    }

    /// No device clock: the emulator's time says nothing about a GPU's.
    fn timed<R, E: From<dae_core::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E> {
        Ok((work()?, None))
    }

    fn sm_count(&self) -> usize {
        self.sm_count
    }

    fn alloc(&self, bytes: usize) -> Result<Self::Memory> {
        let m = Rc::new(HostMemory::new(bytes)?);
        self.live.borrow_mut().push(Rc::downgrade(&m));
        Ok(m)
    }

    fn address(&self, mem: &Self::Memory) -> u64 {
        mem.address()
    }

    fn write(&self, mem: &mut Self::Memory, data: &[u8]) -> Result<()> {
        if data.len() > mem.bytes {
            return Err(err!(
                Plan,
                "write of {} bytes into {}",
                data.len(),
                mem.bytes
            ));
        }
        // SAFETY: in bounds of the allocation, which nothing else borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), mem.address() as *mut u8, data.len())
        };
        Ok(())
    }

    fn read(&self, mem: &Self::Memory, len: usize) -> Result<Vec<u8>> {
        if len > mem.bytes {
            return Err(err!(Plan, "read of {len} bytes from {}", mem.bytes));
        }
        // SAFETY: in bounds of the allocation.
        Ok(unsafe { std::slice::from_raw_parts(mem.address() as *const u8, len) }.to_vec())
    }

    fn run(&self, op: &Op) -> Result<()> {
        for l in op.launches(self.sm_count)? {
            self.launch(&l)?;
        }
        Ok(())
    }
}

/// The kernel suite's seed for the emulator tests: the suite default, or
/// `DAE_CHECK_SEED` (so CI and a developer can sweep seeds; every failure
/// names the seed it ran under).
pub fn suite_seed() -> u64 {
    std::env::var("DAE_CHECK_SEED").map_or(dae_core::check::DEFAULT_SEED, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("DAE_CHECK_SEED={s} is not a number"))
    })
}
