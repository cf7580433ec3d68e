//! Writing arrays as .npy, atomically.

use anyhow::Result;
use dae_model::checkpoint::write_atomically;
use npyz::WriterBuilder;
use std::path::Path;

/// Writes `data` as a row-major array of `shape`.
pub fn write_npy<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()?;
    write_atomically(path, &bytes)
}
