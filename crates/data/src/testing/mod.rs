//! Test support for every crate's tests (the `testing` feature, enabled
//! only from [dev-dependencies]): small datasets and the bytes of IDX,
//! `.npy` and gzip files written by hand, so a test can build exactly the
//! (possibly malformed) input it needs, and the seeded fuzzer.

pub mod fuzz;

use crate::{Dataset, Pixels};
use std::io::Write;

/// `rows` unlabelled samples of `dim` values (not images) from `pixels`.
pub fn flat_dataset(name: &str, rows: usize, dim: usize, pixels: Pixels) -> Dataset {
    let len = match &pixels {
        Pixels::U8(p) => p.len(),
        Pixels::F32(p) => p.len(),
    };
    assert_eq!(
        Some(len),
        rows.checked_mul(dim),
        "{len} values for {rows}×{dim}"
    );
    Dataset {
        name: name.into(),
        rows,
        dim,
        pixels,
        labels: None,
        image_shape: None,
    }
}

/// `bytes` gzip'd at the default level.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::default())
}

/// `bytes` gzip'd at the fastest level.
pub fn gzip_fast(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::fast())
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// An unsigned-byte IDX image: header of `dims`, then `data` as given
/// (which need not match the dims).
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8, 0, 0x08, dims.len() as u8];
    for &d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// A version-1.0 `.npy` with a hand-written header of `descr` and `shape`
/// (Python tuple text, so shapes npyz cannot write, e.g. whose product
/// wraps) and the raw `payload`.
pub fn raw_npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    npy_with_order(descr, shape, false, payload)
}

/// `raw_npy`, Fortran-ordered when `fortran`.
pub fn npy_with_order(descr: &str, shape: &str, fortran: bool, payload: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// `shape` as a Python tuple, as numpy writes it: `(5,)`, `(2, 3)`.
pub fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
