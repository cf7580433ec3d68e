//! `dae encode`: the encoder's codes of a split, as .npy.

use crate::args::{DataArgs, DeviceChoice, Split};
use crate::device::create_backend;
use crate::npy_out::write_npy;
use crate::run_dir::RunDir;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Run directory written by `dae train`
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Codes .npy [default: RUN_DIR/codes-<split>.npy]; labels go beside it as <stem>-labels.npy
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

pub fn run(a: EncodeArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    let ck = run.load_checkpoint()?;
    let splits = a.data.load()?;
    crate::commands::eval::check_fits(&ck, &run, splits.train.dim)?;
    let data = match a.split {
        Split::Train => &splits.train,
        Split::Test => &splits.test,
    };
    let mut backend = create_backend(a.device, &ck.arch, &ck.config, ck.state.clone(), true)?;
    let rows: Vec<u32> = (0..data.rows as u32).collect();
    let codes = backend.encode(data, &rows)?;
    let out = a
        .out
        .unwrap_or_else(|| run.path.join(format!("codes-{}.npy", data.name)));
    if out.extension().and_then(|e| e.to_str()) != Some("npy") {
        anyhow::bail!("--out {}: expected a .npy file name", out.display());
    }
    write_npy(&out, &[data.rows, ck.arch.code_dim()], &codes)?;
    println!(
        "wrote {} ({} × {} float32 codes)",
        out.display(),
        data.rows,
        ck.arch.code_dim()
    );
    if let Some(labels) = &data.labels {
        let stem = out.file_stem().unwrap().to_string_lossy();
        let label_path = out.with_file_name(format!("{stem}-labels.npy"));
        let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        write_npy(&label_path, &[data.rows], &labels)?;
        println!(
            "wrote {} ({} int64 labels)",
            label_path.display(),
            data.rows
        );
    }
    Ok(())
}
