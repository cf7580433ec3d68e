//! `.npy` arrays and `.npz` archives of them.

use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Array data in the forms dae uses: raw bytes, floats, or integers (labels).
pub enum NpyData {
    U8(Vec<u8>),
    F32(Vec<f32>),
    Int(Vec<i64>),
}

pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

fn convert<T: npyz::Deserialize, U>(
    npy: npyz::NpyFile<&[u8]>,
    f: impl Fn(T) -> U,
) -> std::io::Result<Vec<U>> {
    Ok(npy.into_vec::<T>()?.into_iter().map(f).collect())
}

/// Parses one `.npy` image held in memory; `what` names it in errors.
pub fn read_array(bytes: &[u8], what: &str) -> Result<NpyArray> {
    let npy =
        npyz::NpyFile::new(bytes).map_err(|e| anyhow!("{what}: not a valid .npy array ({e})"))?;
    if npy.order() == npyz::Order::Fortran {
        bail!("{what}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => bail!("{what}: unsupported structured dtype {other:?}"),
    };
    let kind = dtype.trim_start_matches(['<', '>', '|', '=']);
    let read_err = |e: std::io::Error| anyhow!("{what}: cannot read {dtype} data ({e})");
    let data = match kind {
        "u1" => NpyData::U8(npy.into_vec::<u8>().map_err(read_err)?),
        "f4" => NpyData::F32(npy.into_vec::<f32>().map_err(read_err)?),
        "f8" => NpyData::F32(convert(npy, |v: f64| v as f32).map_err(read_err)?),
        "i1" => NpyData::Int(convert(npy, |v: i8| v as i64).map_err(read_err)?),
        "i2" => NpyData::Int(convert(npy, |v: i16| v as i64).map_err(read_err)?),
        "u2" => NpyData::Int(convert(npy, |v: u16| v as i64).map_err(read_err)?),
        "i4" => NpyData::Int(convert(npy, |v: i32| v as i64).map_err(read_err)?),
        "u4" => NpyData::Int(convert(npy, |v: u32| v as i64).map_err(read_err)?),
        "i8" => NpyData::Int(npy.into_vec::<i64>().map_err(read_err)?),
        _ => bail!("{what}: unsupported dtype {dtype} (use uint8, float32/64 or integer labels)"),
    };
    Ok(NpyArray { shape, data })
}

/// The `.npy` image of `data` as a row-major array of `shape`.
pub fn npy_bytes<T: npyz::AutoSerialize + Copy>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
}

pub fn read_npy_file(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    read_array(&bytes, &path.display().to_string())
}

/// Every array in an `.npz` archive, by name (without the `.npy` suffix).
pub fn read_npz_file(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let p = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("{p}: cannot open"))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| anyhow!("{p}: not a valid .npz archive ({e})"))?;
    let mut arrays = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| anyhow!("{p}: corrupt archive entry {i} ({e})"))?;
        let name = entry
            .name()
            .map_err(|e| anyhow!("{p}: bad name in archive entry {i} ({e})"))?
            .trim_end_matches(".npy")
            .to_string();
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow!("{p}: cannot read array '{name}' ({e})"))?;
        let array = read_array(&bytes, &format!("{p}: array '{name}'"))?;
        arrays.push((name, array));
    }
    Ok(arrays)
}
