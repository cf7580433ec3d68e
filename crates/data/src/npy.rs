//! `.npy` arrays and `.npz` archives of them.

use crate::error::{fail, Error, Result};
use std::io::{Read, Seek, Write};
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
    let declared = crate::npy_header::declared(bytes, what)?;
    let npy = npyz::NpyFile::new(bytes)
        .map_err(|e| Error::format(what, format!("not a valid .npy array ({e})")))?;
    if npy.shape() != declared.shape {
        fail!(format, what, ".npy header is ambiguous about its shape");
    }
    if npy.order() == npyz::Order::Fortran {
        fail!(
            format,
            what,
            "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)"
        );
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::too_large(what, format!("shape {:?} is too large", npy.shape())))?;
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => fail!(format, what, "unsupported structured dtype {other:?}"),
    };
    let kind = dtype.trim_start_matches(['<', '>', '|', '=']);
    // The element size of every dtype accepted below is the digit in its code.
    let item = kind[1..].parse::<u64>().unwrap_or(1);
    let present = (bytes.len() - declared.data_offset) as u64;
    match npy.len().checked_mul(item) {
        Some(need) if need <= present => {}
        _ => fail!(
            too_large,
            what,
            "shape {shape:?} of {dtype} needs {} data bytes but the file has {present} \
             (truncated?)",
            npy.len().saturating_mul(item)
        ),
    }
    let read_err =
        |e: std::io::Error| Error::format(what, format!("cannot read {dtype} data ({e})"));
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
        _ => fail!(
            format,
            what,
            "unsupported dtype {dtype} (use uint8, float32/64 or integer labels)"
        ),
    };
    Ok(NpyArray { shape, data })
}

/// The `.npy` image of `data` as a row-major array of `shape`.
pub fn npy_bytes<T: npyz::AutoSerialize + Copy>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()
        .and_then(|mut w| {
            w.extend(data.iter().copied())?;
            w.finish()
        })
        .map_err(|e| Error::encode(format!("a {shape:?} .npy array"), e))?;
    Ok(bytes)
}

/// One array of an .npz archive: a .npy entry streamed into the zip.
pub fn write_npz_entry<W: Write + Seek, T: npyz::AutoSerialize + Copy>(
    zip: &mut zip::ZipWriter<W>,
    name: &str,
    shape: &[u64],
    data: &[T],
) -> Result<()> {
    use npyz::WriterBuilder;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    let err = |e: &dyn std::fmt::Display| Error::encode(format!("array '{name}'"), e);
    zip.start_file(format!("{name}.npy"), options)
        .map_err(|e| err(&e))?;
    npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::with_capacity(1 << 20, &mut *zip))
        .begin_nd()
        .and_then(|mut w| {
            w.extend(data.iter().copied())?;
            w.finish()
        })
        .map_err(|e| err(&e))
}

pub fn read_npy_file(path: &Path) -> Result<NpyArray> {
    let bytes = crate::read_regular(path)?;
    read_array(&bytes, &path.display().to_string())
}

/// Deflate expands at most 1032:1; a claimed size beyond that of the
/// compressed bytes (plus slack for headers) cannot be genuine.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Largest buffer reserved up front for an entry; beyond it the buffer grows
/// with the bytes that actually arrive.
const MAX_RESERVE: u64 = 64 << 20;

/// An entry's bytes, read through a bound of its claimed size: the claim is
/// checked against the compressed bytes present first, and an entry that
/// inflates past its claim (or short of it) is an error.
/// `what` names the entry in errors.
fn read_entry<R: Read>(
    entry: &mut zip::read::ZipFile<'_, R>,
    archive_len: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let claimed = entry.size();
    let stored = entry.compressed_size().min(archive_len);
    let limit = stored
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(1024);
    if claimed > limit {
        fail!(
            too_large,
            what,
            "claims {claimed} bytes from {stored} compressed bytes, more than deflate can hold \
             (corrupt or hostile archive)"
        );
    }
    let mut bytes = Vec::with_capacity(claimed.min(MAX_RESERVE) as usize);
    entry
        .take(claimed.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::format(what, format!("cannot read ({e})")))?;
    let got = bytes.len() as u64;
    if got > claimed {
        fail!(
            too_large,
            what,
            "inflates past the {claimed} bytes its header claims"
        );
    }
    if got < claimed {
        fail!(
            format,
            what,
            "its header claims {claimed} bytes but it holds {got}"
        );
    }
    Ok(bytes)
}

/// Every array in an `.npz` archive, by name (without the `.npy` suffix).
pub fn read_npz_file(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let p = path.display();
    let file = crate::open_regular(path)?;
    let archive_len = file.metadata().map_or(u64::MAX, |m| m.len());
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| Error::format(&p, format!("not a valid .npz archive ({e})")))?;
    let mut arrays = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| Error::format(&p, format!("corrupt archive entry {i} ({e})")))?;
        let name = entry
            .name()
            .map_err(|e| Error::format(&p, format!("bad name in archive entry {i} ({e})")))?
            .trim_end_matches(".npy")
            .to_string();
        let what = format!("{p}: array '{name}'");
        let bytes = read_entry(&mut entry, archive_len, &what)?;
        let array = read_array(&bytes, &what)?;
        arrays.push((name, array));
    }
    Ok(arrays)
}
