//! `dae encode`: the encoder's codes of a split, as .npy.

use crate::args::{OpenRun, Split, TrainedRunArgs};
use crate::out_guard::refuse_input_as_output;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub source: TrainedRunArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Codes .npy [default: RUN_DIR/codes-<split>.npy]; labels go beside it as <stem>-labels.npy
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Writes `data` as an .npy array of `shape`, atomically.
fn write_npy<T: npyz::AutoSerialize + Copy>(
    path: &std::path::Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    Ok(dae_data::write_atomically(
        path,
        &dae_data::npy_bytes(shape, data)?,
    )?)
}

pub fn run(a: EncodeArgs) -> Result<()> {
    let inputs = a.source.inputs("");
    if let Some(out) = &a.out {
        refuse_input_as_output("--out", out, &inputs)?;
    }
    let OpenRun {
        run,
        ck,
        splits,
        mut backend,
    } = a.source.open()?;
    let data = a.split.of(&splits);
    let rows: Vec<u32> = (0..data.rows as u32).collect();
    let codes = backend.encode(data, &rows)?;
    crate::outputs::ensure_finite(&run.checkpoint(), "codes", &codes)?;
    let out = a
        .out
        .unwrap_or_else(|| run.path.join(format!("codes-{}.npy", data.name)));
    if out.extension().and_then(|e| e.to_str()) != Some("npy") {
        anyhow::bail!("--out {}: expected a .npy file name", out.display());
    }
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let label_path = out.with_file_name(format!("{stem}-labels.npy"));
    refuse_input_as_output("--out", &out, &inputs)?;
    if data.labels.is_some() {
        refuse_input_as_output("--out (its labels file)", &label_path, &inputs)?;
    }
    write_npy(&out, &[data.rows, ck.arch.code_dim()], &codes)?;
    say!(
        "wrote {} ({} × {} float32 codes)",
        out.display(),
        data.rows,
        ck.arch.code_dim()
    );
    if let Some(labels) = &data.labels {
        let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        write_npy(&label_path, &[data.rows], &labels)?;
        say!(
            "wrote {} ({} int64 labels)",
            label_path.display(),
            data.rows
        );
    }
    Ok(())
}
