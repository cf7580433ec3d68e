//! `dae data`: get and make datasets — MNIST digits from their mirrors, and
//! upscaled (very high-dimensional) versions of an IDX set as .npz.

use crate::args::{ensure_writable_dir, positive, DataArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use dae_data::{read_idx, Dataset, Pixels};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DataCmd {
    #[command(subcommand)]
    pub action: DataAction,
}

#[derive(Subcommand, Debug)]
pub enum DataAction {
    /// Download a known dataset into a directory, verifying checksums
    Fetch(FetchArgs),
    /// Write an upscaled copy of an IDX dataset as .npz (x_train, y_train, x_test, y_test)
    Upscale(UpscaleArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KnownDataset {
    /// MNIST handwritten digits (LeCun, Cortes, Burges)
    Mnist,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    pub dataset: KnownDataset,
    /// Directory to write the four .gz files and SHA256SUMS into (the
    /// default is where `--dataset mnist` looks)
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    pub out: PathBuf,
    /// Base URL to download from instead of the official mirrors
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// Official MNIST mirrors, tried in order.
const MNIST_MIRRORS: &[&str] = &[
    "https://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
];

/// MNIST's files with the MD5 of each .gz as published by torchvision.
const MNIST_FILES: &[(&str, &str)] = &[
    (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
];

/// Largest file accepted from a mirror (MNIST's biggest is 9.9 MB).
const MAX_DOWNLOAD: u64 = 64 << 20;

fn download(url: &str) -> Result<Vec<u8>> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().map_err(|e| anyhow!("{url}: {e}"))?;
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("{url}: download interrupted ({e})"))?;
    Ok(bytes)
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fetch(a: FetchArgs) -> Result<()> {
    let KnownDataset::Mnist = a.dataset;
    ensure_writable_dir(&a.out)?;
    let mirrors: Vec<String> = match &a.mirror {
        Some(m) => vec![if m.ends_with('/') {
            m.clone()
        } else {
            format!("{m}/")
        }],
        None => MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
    };
    // A file of the same name that is not the official one is the user's:
    // refuse before downloading rather than replace it.
    for (name, md5) in MNIST_FILES {
        let path = a.out.join(name);
        if path.exists() && md5_hex(&dae_data::read_regular(&path)?) != *md5 {
            bail!(
                "--out {}: {name} there is not MNIST's (its MD5 differs); refusing to replace it \
                 (move it away or pass another --out)",
                a.out.display()
            );
        }
    }
    let mut sums = String::new();
    for (name, md5) in MNIST_FILES {
        let mut errors = Vec::new();
        let mut got = None;
        for mirror in &mirrors {
            let url = format!("{mirror}{name}");
            match download(&url) {
                Ok(bytes) if md5_hex(&bytes) == *md5 => {
                    got = Some(bytes);
                    break;
                }
                Ok(bytes) => errors.push(format!(
                    "{url}: checksum mismatch (MD5 {}, expected {md5}; {} bytes)",
                    md5_hex(&bytes),
                    bytes.len()
                )),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        let Some(bytes) = got else {
            bail!(
                "could not download {name}:\n  {}\nWithout a network: get the four MNIST files \
                 (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, \
                 t10k-labels-idx1-ubyte.gz) another way, put them in one directory and pass --data DIR",
                errors.join("\n  ")
            );
        };
        let path = a.out.join(name);
        dae_data::write_atomically(&path, &bytes)?;
        // Parse it as IDX (and record the digest of the decompressed bytes).
        let idx = read_idx(&path)?;
        sums += &format!("{}  {}\n", idx.sha256, name.trim_end_matches(".gz"));
        say!("{}: {} bytes, MD5 verified", path.display(), bytes.len());
    }
    let sums_path = a.out.join("SHA256SUMS");
    if sums_path.exists() && dae_data::read_regular(&sums_path)? != sums.as_bytes() {
        bail!(
            "--out {}: its SHA256SUMS is not the one dae writes for MNIST; refusing to replace it \
             (the four .gz files are verified and in place)",
            a.out.display()
        );
    }
    dae_data::write_atomically(&sums_path, sums.as_bytes())?;
    say!(
        "wrote {}; train with --data {}",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpscaleArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output side length in pixels (28 → 112 gives 12,544 inputs, 224 gives 50,176)
    #[arg(long, value_parser = positive)]
    pub size: usize,
    /// Output .npz file
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Keep only the first N train and N/6 test images (quick experiments)
    #[arg(long, value_parser = positive)]
    pub limit: Option<usize>,
}

/// Bilinear resize of one u8 image with pixel centres aligned (as PIL and
/// OpenCV's INTER_LINEAR), rounded to u8.
fn resize_bilinear(src: &[u8], (h, w): (usize, usize), size: usize, dst: &mut [u8]) {
    let coord = |i: usize, n: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * n as f32 / size as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let x0 = x.floor() as usize;
        (x0, (x0 + 1).min(n - 1), x - x0 as f32)
    };
    for r in 0..size {
        let (y0, y1, fy) = coord(r, h);
        for c in 0..size {
            let (x0, x1, fx) = coord(c, w);
            let p = |y: usize, x: usize| src[y * w + x] as f32;
            let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
            let bottom = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
            dst[r * size + c] = (top * (1.0 - fy) + bottom * fy).round() as u8;
        }
    }
}

fn upscaled(d: &Dataset, limit: Option<usize>, size: usize) -> Result<(usize, Vec<u8>)> {
    let Pixels::U8(pixels) = &d.pixels else {
        bail!("upscale takes uint8 image data (an IDX directory or a uint8 .npz)");
    };
    let shape = d
        .image_shape
        .ok_or_else(|| anyhow!("upscale needs image-shaped data ([n, h, w])"))?;
    let rows = limit.map_or(d.rows, |l| l.min(d.rows));
    let len = size
        .checked_mul(size)
        .and_then(|p| p.checked_mul(rows))
        .ok_or_else(|| anyhow!("--size {size}: {rows} upscaled images overflow"))?;
    let mut out = vec![0u8; len];
    use rayon::prelude::*;
    out.par_chunks_mut(size * size)
        .enumerate()
        .for_each(|(i, dst)| {
            resize_bilinear(&pixels[i * d.dim..(i + 1) * d.dim], shape, size, dst)
        });
    Ok((rows, out))
}

/// One array of an .npz archive: a .npy entry streamed into the zip.
fn npz_entry<W: Write + std::io::Seek, T: npyz::AutoSerialize + Copy>(
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
    zip.start_file(format!("{name}.npy"), options)?;
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::with_capacity(1 << 20, &mut *zip))
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()?;
    Ok(())
}

fn upscale(a: UpscaleArgs) -> Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("npz") {
        bail!("--out {}: expected an .npz file name", a.out.display());
    }
    let mut inputs = vec![("the data", a.data.path()?)];
    if let Some(v) = &a.data.val_data {
        inputs.push(("the validation data", v.clone()));
    }
    crate::out_guard::refuse_input_as_output("--out", &a.out, &inputs)?;
    // A side whose square is wider than any layer dae trains is refused
    // before anything is loaded or allocated.
    let max_side = dae_model::MAX_WIDTH.isqrt();
    if a.size > max_side {
        bail!(
            "--size {}: at most {max_side} ({max_side}×{max_side} = {} inputs, dae's widest layer)",
            a.size,
            dae_model::MAX_WIDTH
        );
    }
    let splits = a.data.load()?;
    let rows = |d: &Dataset, limit: Option<usize>| limit.map_or(d.rows, |l| l.min(d.rows));
    let test_limit = a.limit.map(|l| (l / 6).max(1));
    let need = (rows(&splits.train, a.limit) as u128 + rows(&splits.test, test_limit) as u128)
        * (a.size * a.size) as u128;
    if let Some((free, what)) = dae_model::memory::host_memory_limit() {
        if need > free as u128 {
            bail!(
                "--size {}: the upscaled images need {} but only {} of memory is available \
                 ({what}); use a smaller --size or --limit",
                a.size,
                dae_model::memory::human_bytes(usize::try_from(need).unwrap_or(usize::MAX)),
                dae_model::memory::human_bytes(free)
            );
        }
    }
    let s = a.size as u64;
    let (train_rows, train) = upscaled(&splits.train, a.limit, a.size)?;
    let (test_rows, test) = upscaled(&splits.test, test_limit, a.size)?;
    let tmp =
        dae_data::temp_file_beside(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(tmp.reopen()?));
    npz_entry(&mut zip, "x_train", &[train_rows as u64, s, s], &train)?;
    npz_entry(&mut zip, "x_test", &[test_rows as u64, s, s], &test)?;
    for (name, d, rows) in [
        ("y_train", &splits.train, train_rows),
        ("y_test", &splits.test, test_rows),
    ] {
        if let Some(labels) = &d.labels {
            let l: Vec<i64> = labels[..rows].iter().map(|&v| v as i64).collect();
            npz_entry(&mut zip, name, &[rows as u64], &l)?;
        }
    }
    zip.finish()?.flush()?;
    tmp.persist(&a.out)
        .map_err(|e| anyhow!("--out {}: cannot write ({})", a.out.display(), e.error))?;
    say!(
        "wrote {}: {train_rows} train / {test_rows} test images of {}×{} ({} inputs); train on it with --data {}",
        a.out.display(),
        a.size,
        a.size,
        a.size * a.size,
        a.out.display()
    );
    Ok(())
}

pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd.action {
        DataAction::Fetch(a) => fetch(a),
        DataAction::Upscale(a) => upscale(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_corners() {
        let src = [7u8; 9];
        let mut dst = [0u8; 36];
        resize_bilinear(&src, (3, 3), 6, &mut dst);
        assert!(dst.iter().all(|&v| v == 7));
        let src = [0u8, 255, 0, 255];
        let mut dst = [0u8; 16];
        resize_bilinear(&src, (2, 2), 4, &mut dst);
        assert_eq!(dst[0], 0);
        assert_eq!(dst[3], 255);
        assert_eq!(dst[1], 64); // a quarter of the way from 0 to 255
    }
}
