//! `dae data`: get and make datasets — MNIST digits from their mirrors, and
//! upscaled (very high-dimensional) versions of an IDX set as .npz.

use crate::args::{ensure_writable_dir, positive, DataArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use dae_data::Dataset;
use std::io::Write;
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

fn fetch(a: FetchArgs) -> Result<()> {
    let KnownDataset::Mnist = a.dataset;
    ensure_writable_dir(&a.out)?;
    crate::fetch::mnist(&a.out, a.mirror.as_deref())?;
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
    let (train_rows, train) = dae_data::upscaled(&splits.train, a.limit, a.size)?;
    let (test_rows, test) = dae_data::upscaled(&splits.test, test_limit, a.size)?;
    let tmp =
        dae_data::temp_file_beside(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(tmp.reopen()?));
    dae_data::write_npz_entry(&mut zip, "x_train", &[train_rows as u64, s, s], &train)?;
    dae_data::write_npz_entry(&mut zip, "x_test", &[test_rows as u64, s, s], &test)?;
    for (name, d, rows) in [
        ("y_train", &splits.train, train_rows),
        ("y_test", &splits.test, test_rows),
    ] {
        if let Some(labels) = &d.labels {
            let l: Vec<i64> = labels[..rows].iter().map(|&v| v as i64).collect();
            dae_data::write_npz_entry(&mut zip, name, &[rows as u64], &l)?;
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
