//! kernels/data.cu: the batch gather (rows of the dataset, stored on the
//! device as u8 or f32, picked through the epoch's permutation) and the
//! device-held offset into that permutation, advanced after every step so a
//! replayed CUDA graph walks the epoch.

use super::launch::{int, launch, Arg, Launch};
use super::{host, row_at, HostPart, HostParts, Kernel};
use crate::{cpu, Result};

pub const GATHER_U8: &str = "gather_u8";
pub const GATHER_F32: &str = "gather_f32";
pub const GATHER_U8_DEV: &str = "gather_u8_dev";
pub const GATHER_F32_DEV: &str = "gather_f32_dev";
pub const OFFSET_ADVANCE: &str = "offset_advance";

/// Where a gather's starting row comes from.
#[derive(Clone, Copy, Debug)]
pub enum Offset {
    Value(usize),
    /// The address of a device int (advanced by `OffsetAdvance`).
    Device(u64),
}

/// out[i, :] = data[index[offset + i], :] for i < rows.
#[derive(Clone, Debug)]
pub struct Gather {
    pub u8_data: bool,
    pub data: u64,
    /// u32 row indices.
    pub index: u64,
    pub offset: Offset,
    pub rows: usize,
    pub dim: usize,
    pub out: u64,
}

impl Gather {
    /// The first index the gather reads.
    ///
    /// # Safety
    /// A device offset must be a host address of an i32 here.
    unsafe fn start(&self) -> usize {
        match self.offset {
            Offset::Value(o) => o,
            Offset::Device(ptr) => *(ptr as *const i32) as usize,
        }
    }
}

impl Kernel for Gather {
    fn launches(&self, _sm: usize) -> Result<Vec<Launch>> {
        let (kernel, offset) = match (self.offset, self.u8_data) {
            (Offset::Value(o), true) => (GATHER_U8, int(o)?),
            (Offset::Value(o), false) => (GATHER_F32, int(o)?),
            (Offset::Device(p), true) => (GATHER_U8_DEV, Arg::Ptr(p)),
            (Offset::Device(p), false) => (GATHER_F32_DEV, Arg::Ptr(p)),
        };
        Ok(vec![launch(
            kernel,
            (self.rows.clamp(1, 65_535), 1, 1),
            256,
            vec![
                Arg::Ptr(self.data),
                Arg::Ptr(self.index),
                offset,
                int(self.rows)?,
                int(self.dim)?,
                Arg::Ptr(self.out),
            ],
        )])
    }

    fn work(&self) -> (f64, f64) {
        let elems = (self.rows * self.dim) as f64;
        let per = if self.u8_data { 5.0 } else { 8.0 };
        (elems, elems * per + 4.0 * self.rows as f64)
    }

    fn host_parts(&self) -> HostParts {
        HostParts::Rows(self.rows)
    }

    unsafe fn run_on_host_part(&self, part: &HostPart) {
        let r = part.range(self.rows, 1);
        if !r.is_empty() {
            Gather {
                offset: Offset::Value(self.start() + r.start),
                rows: r.len(),
                out: row_at(self.out, r.start, self.dim),
                ..self.clone()
            }
            .run_on_host();
        }
    }

    unsafe fn run_on_host(&self) {
        let start = self.start();
        let rows = std::slice::from_raw_parts((self.index as *const u32).add(start), self.rows);
        // Only as much of the data as the rows reach.
        let len = rows.iter().map(|&r| r as usize + 1).max().unwrap_or(0) * self.dim;
        let pixels = if self.u8_data {
            cpu::Pixels::U8(std::slice::from_raw_parts(self.data as *const u8, len))
        } else {
            cpu::Pixels::F32(std::slice::from_raw_parts(self.data as *const f32, len))
        };
        cpu::gather(pixels, rows, self.dim, host(self.out, self.rows * self.dim));
    }
}

/// *offset += rows (an i32 on the device).
#[derive(Clone, Debug)]
pub struct OffsetAdvance {
    pub offset: u64,
    pub rows: usize,
}

impl Kernel for OffsetAdvance {
    fn launches(&self, _sm: usize) -> Result<Vec<Launch>> {
        Ok(vec![launch(
            OFFSET_ADVANCE,
            (1, 1, 1),
            1,
            vec![Arg::Ptr(self.offset), int(self.rows)?],
        )])
    }

    fn work(&self) -> (f64, f64) {
        (1.0, 8.0)
    }

    unsafe fn run_on_host(&self) {
        *(self.offset as *mut i32) += self.rows as i32;
    }
}
