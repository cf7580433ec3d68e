//! `dae eval`: reconstruction loss of a trained run on a split.

use crate::args::{DataArgs, DeviceChoice, Split};
use crate::device::create_backend;
use crate::run_dir::RunDir;
use anyhow::{bail, Result};
use clap::Args;
use dae_model::Checkpoint;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `dae train`
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Also write the results as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// The checkpoint's architecture must take samples of this width.
pub fn check_fits(ck: &Checkpoint, run: &RunDir, dim: usize) -> Result<()> {
    if ck.arch.input_dim != dim {
        bail!(
            "{}: checkpoint architecture {} takes {} values per sample, but the data has {dim}",
            run.checkpoint().display(),
            ck.arch.describe(),
            ck.arch.input_dim
        );
    }
    Ok(())
}

pub fn run(a: EvalArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    let ck = run.load_checkpoint()?;
    let splits = a.data.load()?;
    check_fits(&ck, &run, splits.train.dim)?;
    let data = match a.split {
        Split::Train => &splits.train,
        Split::Test => &splits.test,
    };
    let mut backend = create_backend(a.device, &ck.arch, &ck.config, ck.state.clone(), true)?;
    let eval = backend.evaluate(data, true)?;
    println!(
        "{} split of {}: {} samples, mean binary cross-entropy {:.6}",
        data.name, splits.description, data.rows, eval.loss
    );
    let mut per_class = Vec::new();
    if let Some(labels) = &data.labels {
        // A map, not a Vec indexed by label: labels from .npy/.npz may be
        // any u32, and a large one must not allocate billions of slots.
        let mut sums = std::collections::BTreeMap::<u32, (usize, f64)>::new();
        for (&l, &loss) in labels.iter().zip(&eval.row_loss) {
            let e = sums.entry(l).or_default();
            e.0 += 1;
            e.1 += loss;
        }
        println!("{:<6}{:<16}{:>8}{:>12}", "label", "class", "count", "loss");
        for (&label, (count, sum)) in &sums {
            let name = splits.class_name(label);
            let mean = sum / *count as f64;
            println!("{label:<6}{name:<16}{count:>8}{mean:>12.6}");
            per_class.push(json!({"label": label, "class": name, "count": count, "loss": mean}));
        }
    }
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&json!({
            "run": a.run, "split": data.name, "samples": data.rows,
            "loss": eval.loss, "per_class": per_class,
        }))?;
        dae_model::checkpoint::write_atomically(&path, text.as_bytes())?;
    }
    Ok(())
}
