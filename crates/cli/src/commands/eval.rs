//! `dae eval`: reconstruction loss of a trained run on a split.

use crate::args::{OpenRun, Split, TrainedRunArgs};
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub source: TrainedRunArgs,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Also write the results as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The --json report: the loss on the split, and per class when labelled.
#[derive(Serialize)]
struct EvalReport<'a> {
    run: &'a std::path::Path,
    split: &'a str,
    samples: usize,
    loss: f64,
    per_class: Vec<ClassLoss>,
}

#[derive(Serialize)]
struct ClassLoss {
    label: u32,
    class: String,
    count: usize,
    loss: f64,
}

pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(path) = &a.json {
        crate::out_guard::refuse_input_as_output("--json", path, &a.source.inputs(""))?;
    }
    let OpenRun {
        run,
        splits,
        mut backend,
        ..
    } = a.source.open()?;
    let data = a.split.of(&splits);
    let eval = backend.evaluate(data, true)?;
    let ck_path = run.checkpoint();
    crate::outputs::ensure_finite_loss(&ck_path, "reconstruction loss", eval.loss)?;
    if let Some(i) = eval.row_loss.iter().position(|l| !l.is_finite()) {
        crate::outputs::ensure_finite_loss(
            &ck_path,
            &format!("reconstruction loss of sample {i}"),
            eval.row_loss[i],
        )?;
    }
    say!(
        "{} split of {}: {} samples, mean binary cross-entropy {:.6}",
        data.name,
        splits.description,
        data.rows,
        eval.loss
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
        say!("{:<6}{:<16}{:>8}{:>12}", "label", "class", "count", "loss");
        for (&label, (count, sum)) in &sums {
            let name = splits.class_name(label);
            let mean = sum / *count as f64;
            say!("{label:<6}{name:<16}{count:>8}{mean:>12.6}");
            per_class.push(ClassLoss {
                label,
                class: name,
                count: *count,
                loss: mean,
            });
        }
    }
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&EvalReport {
            run: &run.path,
            split: &data.name,
            samples: data.rows,
            loss: eval.loss,
            per_class,
        })?;
        dae_data::write_atomically(&path, text.as_bytes())?;
    }
    Ok(())
}
