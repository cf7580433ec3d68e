//! IDX files (the MNIST format), gzip'd or raw.

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::{Read, Write};
use std::path::Path;

/// An unsigned-byte IDX array: its dimensions and data.
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
    /// SHA-256 of the decompressed file.
    pub sha256: String,
}

/// Reads the whole file, gunzipping it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 2);
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| anyhow::anyhow!("{}: corrupt gzip stream ({e})", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX file of unsigned bytes and checks that the header's
/// dimensions account for exactly the bytes that follow it.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    let p = path.display();
    if bytes.len() < 4 {
        bail!("{p}: too short for an IDX header ({} bytes)", bytes.len());
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        bail!(
            "{p}: not an IDX file (magic {:02x}{:02x}{:02x}{:02x}, expected 0000 08 0N)",
            bytes[0],
            bytes[1],
            bytes[2],
            bytes[3]
        );
    }
    if bytes[2] != 0x08 {
        bail!(
            "{p}: IDX element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        );
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        bail!("{p}: IDX header declares {ndim} dimensions (expected 1 to 4)");
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        bail!("{p}: truncated IDX header");
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    let actual = bytes.len() - header;
    if actual != expected {
        bail!(
            "{p}: header dimensions {dims:?} need {expected} data bytes but the file has {actual}{}",
            if actual < expected { " (truncated?)" } else { "" }
        );
    }
    let sha256 = crate::sha256_hex(&bytes);
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
        sha256,
    })
}

/// Writes an unsigned-byte IDX file, gzip'd (used by tests and tools to
/// produce small datasets in the MNIST layout).
pub fn write_idx_gz(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut header = vec![0u8, 0, 0x08, dims.len() as u8];
    for &d in dims {
        header.extend_from_slice(&(d as u32).to_be_bytes());
    }
    gz.write_all(&header)?;
    gz.write_all(data)?;
    gz.finish()
        .with_context(|| format!("{}: write failed", path.display()))?;
    Ok(())
}
