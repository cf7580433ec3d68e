//! IDX files (the MNIST format), gzip'd or raw.

use crate::error::{fail, Error, Result};
use flate2::read::GzDecoder;
use std::io::{BufRead, Read, Write};
use std::path::Path;

/// An unsigned-byte IDX array: its dimensions and data.
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
    /// SHA-256 of the decompressed file.
    pub sha256: String,
}

/// Largest buffer reserved up front; beyond it the buffer grows with the
/// bytes that actually arrive, so a header cannot reserve what is not there.
const MAX_RESERVE: usize = 64 << 20;

/// The IDX image (header and data) of `path`, gunzipped when it starts with
/// the gzip magic. The header is read first and the rest through a bound of
/// what it declares, so a stream that inflates past that stops at one byte
/// over, whatever it would inflate to.
fn read_image(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let p = path.display();
    let file = crate::open_regular(path)?;
    let mut raw = std::io::BufReader::new(file);
    let gz = raw
        .fill_buf()
        .map_err(|e| Error::io(path, "cannot read", e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let stream_err = |e: std::io::Error| {
        if gz {
            Error::format(&p, format!("corrupt gzip stream ({e})"))
        } else {
            Error::io(path, "cannot read", e)
        }
    };
    let mut bytes = Vec::new();
    (&mut reader)
        .take(4)
        .read_to_end(&mut bytes)
        .map_err(stream_err)?;
    if bytes.len() < 4 {
        fail!(
            format,
            p,
            "too short for an IDX header ({} bytes)",
            bytes.len()
        );
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        fail!(
            format,
            p,
            "not an IDX file (magic {:02x}{:02x}{:02x}{:02x}, expected 0000 08 0N)",
            bytes[0],
            bytes[1],
            bytes[2],
            bytes[3]
        );
    }
    if bytes[2] != 0x08 {
        fail!(
            format,
            p,
            "IDX element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        );
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        fail!(
            format,
            p,
            "IDX header declares {ndim} dimensions (expected 1 to 4)"
        );
    }
    let header = 4 + 4 * ndim;
    (&mut reader)
        .take(4 * ndim as u64)
        .read_to_end(&mut bytes)
        .map_err(stream_err)?;
    if bytes.len() < header {
        fail!(format, p, "truncated IDX header");
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        fail!(
            too_large,
            p,
            "header dimensions {dims:?} overflow the address space"
        );
    };
    bytes.reserve(expected.min(MAX_RESERVE));
    let bound = (expected as u64).saturating_add(1);
    (&mut reader)
        .take(bound)
        .read_to_end(&mut bytes)
        .map_err(stream_err)?;
    let actual = bytes.len() - header;
    if actual > expected {
        // Only one byte past the declared size was read: say "or more".
        fail!(too_large, p, "header dimensions {dims:?} need {expected} data bytes but the file has {actual} or more");
    }
    if actual < expected {
        fail!(
            too_large,
            p,
            "header dimensions {dims:?} need {expected} data bytes but the file has {actual} \
             (truncated?)"
        );
    }
    if gz {
        // Read on to the gzip trailer so its CRC and length are checked.
        let mut rest = [0u8; 1];
        if reader.read(&mut rest).map_err(stream_err)? != 0 {
            fail!(
                too_large,
                p,
                "the gzip stream holds more than its IDX header declares"
            );
        }
    }
    Ok((dims, bytes))
}

/// Reads an IDX file of unsigned bytes and checks that the header's
/// dimensions account for exactly the bytes that follow it.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let (dims, mut bytes) = read_image(path)?;
    let sha256 = crate::sha256_hex(&bytes);
    let header = 4 + 4 * dims.len();
    bytes.drain(..header);
    Ok(IdxArray {
        dims,
        data: bytes,
        sha256,
    })
}

/// Writes an unsigned-byte IDX file, gzip'd (used by tests and tools to
/// produce small datasets in the MNIST layout).
pub fn write_idx_gz(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, "cannot create", e))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut header = vec![0u8, 0, 0x08, dims.len() as u8];
    for &d in dims {
        header.extend_from_slice(&(d as u32).to_be_bytes());
    }
    gz.write_all(&header)
        .and_then(|_| gz.write_all(data))
        .and_then(|_| gz.finish().map(drop))
        .map_err(|e| Error::io(path, "write failed", e))?;
    Ok(())
}
