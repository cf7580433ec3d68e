//! `dae compare`: several architectures trained with the same data, seed and
//! schedule (the lab's "simple vs deep" exercise), side by side.

use crate::args::{parse_layers, positive, DataArgs, ScheduleArgs, Widths};
use crate::chart::{LineChart, Panel, Scale, Series};
use crate::commands::figure::{image_shape_of, sample_test_images};
use crate::figure::{parse_image_shape, render, FigureData, Row};
use crate::run_dir::{claim, RunDir, RUN_FILES};
use crate::run_lock;
use crate::training::{self, Session, Start};
use anyhow::{bail, Result};
use clap::Args;
use dae_model::{group_digits, Architecture, History, TrainConfig};
use serde::Serialize;
use std::path::PathBuf;

/// What `dae compare` writes into its --out besides the runs.
const COMPARE_FILES: &[&str] = &[
    "compare.json",
    "compare.csv",
    "val_loss.png",
    "reconstructions.png",
];

#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// An architecture to compare; repeat the flag [default: --layers 32 --layers 128,64,32]
    #[arg(long = "layers", value_parser = parse_layers)]
    pub layers: Vec<Widths>,
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub epochs: usize,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Output directory: one run directory per model plus the comparison
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
    /// Image (height,width) for the figure when the data is flat
    #[arg(long, value_name = "H,W")]
    pub image_shape: Option<String>,
}

/// compare.json: the data, the shared settings and one entry per model.
#[derive(Serialize)]
struct CompareReport<'a> {
    data: &'a str,
    settings: &'a TrainConfig,
    models: Vec<ModelResult>,
}

/// One model's line of the comparison.
#[derive(Serialize)]
struct ModelResult {
    name: String,
    architecture: String,
    params: usize,
    encoder_params: usize,
    final_loss: Option<f64>,
    final_val_loss: Option<f64>,
    best_loss: f64,
    best_val_loss: f64,
    best_val_epoch: usize,
    train_seconds: f64,
    device: String,
    run_dir: PathBuf,
    history: History,
}

pub fn run_name(encoder: &[usize]) -> String {
    let w: Vec<String> = encoder.iter().map(|w| w.to_string()).collect();
    format!("ae-{}", w.join("-"))
}

pub fn run(a: CompareArgs) -> Result<()> {
    let layers: Vec<Vec<usize>> = if a.layers.is_empty() {
        vec![vec![32], vec![128, 64, 32]]
    } else {
        a.layers.iter().map(|w| w.0.clone()).collect()
    };
    for (i, l) in layers.iter().enumerate() {
        if layers[..i].contains(l) {
            bail!(
                "--layers {} is given twice",
                l.iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
    }
    let config = a.schedule.config(a.epochs)?;
    claim("--out", &a.out, a.schedule.force, COMPARE_FILES)?;
    let _lock = run_lock::lock(&a.out)?;
    dae_data::remove_orphan_temp_files(&a.out);
    let runs: Vec<RunDir> = layers
        .iter()
        .map(|l| RunDir::new(&a.out.join(run_name(l))))
        .collect();
    if let Some(r) = runs.iter().find(|r| r.checkpoint().exists()) {
        if !a.schedule.force {
            bail!(
                "--out {}: {} already holds a trained run; pass --force to replace it",
                a.out.display(),
                r.path.display()
            );
        }
    }
    let splits = a.data.load()?;
    let image = image_shape_of(
        &splits.test,
        parse_image_shape(&a.image_shape, splits.test.dim)?,
    );
    if !a.schedule.quiet {
        say!("data: {}", splits.description);
    }
    let (titles, rows, originals) = sample_test_images(&splits, a.schedule.seed);
    let mut results = Vec::new();
    let mut reconstructions = Vec::new();
    let mut curves = Vec::new();
    for (encoder, run) in layers.iter().zip(&runs) {
        claim("--out", &run.path, a.schedule.force, RUN_FILES)?;
        dae_data::remove_orphan_temp_files(&run.path);
        let arch = Architecture::new(splits.train.dim, encoder.clone())?;
        let session = Session {
            run,
            arch: &arch,
            config: &config,
            data: &splits.description,
            device: a.schedule.device,
            quiet: a.schedule.quiet,
            label: format!("[{}] ", run_name(encoder)),
        };
        let mut t = training::train(&session, Start::Fresh, &splits.train, &splits.test)?;
        reconstructions.push((
            run_name(encoder),
            t.backend.reconstruct(&splits.test, &rows)?,
        ));
        let h = &t.history;
        let (best_epoch, best_val) = h.val_loss.iter().enumerate().fold(
            (0, f64::MAX),
            |b, (i, &v)| if v < b.1 { (i + 1, v) } else { b },
        );
        let best_loss = h.loss.iter().cloned().fold(f64::MAX, f64::min);
        curves.push(Series {
            name: run_name(encoder),
            points: h
                .val_loss
                .iter()
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        });
        results.push(ModelResult {
            name: run_name(encoder),
            architecture: arch.describe(),
            params: arch.param_count(),
            encoder_params: arch.encoder_param_count(),
            final_loss: h.loss.last().copied(),
            final_val_loss: h.val_loss.last().copied(),
            best_loss,
            best_val_loss: best_val,
            best_val_epoch: best_epoch,
            train_seconds: t.train_seconds,
            device: t.backend.device(),
            run_dir: run.path.clone(),
            history: h.clone(),
        });
    }

    say!(
        "\n{:<22}{:>10}{:>12}{:>12}{:>12}{:>12}{:>10}",
        "model",
        "params",
        "loss",
        "val_loss",
        "best loss",
        "best val",
        "time (s)"
    );
    for r in &results {
        say!(
            "{:<22}{:>10}{:>12.4}{:>12.4}{:>12.4}{:>8.4} @{:<3}{:>8.1}",
            r.name,
            group_digits(r.params),
            r.final_loss.unwrap_or(f64::NAN),
            r.final_val_loss.unwrap_or(f64::NAN),
            r.best_loss,
            r.best_val_loss,
            r.best_val_epoch,
            r.train_seconds,
        );
    }
    let out = RunDir::new(&a.out);
    let report = CompareReport {
        data: &splits.description,
        settings: &config,
        models: results,
    };
    out.save_json("compare.json", &report)?;
    let mut csv = String::from("model,params,final_loss,final_val_loss,best_loss,best_val_loss,best_val_epoch,train_seconds\n");
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in &report.models {
        csv += &format!(
            "{},{},{},{},{},{},{},{}\n",
            r.name,
            r.params,
            cell(r.final_loss),
            cell(r.final_val_loss),
            r.best_loss,
            r.best_val_loss,
            r.best_val_epoch,
            r.train_seconds
        );
    }
    dae_data::write_atomically(&a.out.join("compare.csv"), csv.as_bytes())?;
    LineChart {
        title: format!(
            "validation loss, {} epochs, batch {}",
            a.epochs, a.schedule.batch
        ),
        x_label: "epoch".into(),
        x_scale: Scale::Linear,
        panels: vec![Panel {
            y_label: "val_loss (BCE)".into(),
            y_scale: Scale::Linear,
            series: curves,
        }],
    }
    .render_png(&a.out.join("val_loss.png"))?;
    let mut figure_rows = vec![Row::Images {
        label: "original".into(),
        values: &originals,
    }];
    for (name, values) in &reconstructions {
        figure_rows.push(Row::Images {
            label: name.clone(),
            values,
        });
    }
    render(
        &FigureData {
            image,
            titles,
            rows: figure_rows,
        },
        &a.out.join("reconstructions.png"),
    )?;
    say!(
        "wrote {}/{{compare.json, compare.csv, val_loss.png, reconstructions.png}} and one run directory per model",
        a.out.display()
    );
    Ok(())
}
