//! `dae cv`: K-fold cross-validation on the training set, per architecture.

use crate::args::{parse_layers, positive, DataArgs, ScheduleArgs, Widths};
use crate::commands::compare::run_name;
use crate::run_dir::{claim, RunDir, RUN_FILES};
use crate::run_lock;
use crate::training::{self, Session, Start};
use anyhow::{bail, Result};
use clap::Args;
use dae_model::folds::k_folds;
use dae_model::{Architecture, History, TrainConfig};
use serde::Serialize;
use std::path::PathBuf;

/// What `dae cv` writes into its --out besides the fold runs.
const CV_FILES: &[&str] = &["cv.json", "cv.csv"];

#[derive(Args, Debug)]
pub struct CvArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of folds
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Architecture(s) to cross-validate; repeat to compare [default: 128,64,32]
    #[arg(long = "layers", value_parser = parse_layers)]
    pub layers: Vec<Widths>,
    /// Split folds without regard to labels (default: stratified by class when labels exist)
    #[arg(long)]
    pub no_stratify: bool,
    #[arg(long, default_value_t = 20, value_parser = positive)]
    pub epochs: usize,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Output directory: cv.json, cv.csv and a run directory per fold
    #[arg(long, default_value = "runs/cv")]
    pub out: PathBuf,
}

/// cv.json: the data, the folds, the settings and one entry per model.
#[derive(Serialize)]
struct CvReport<'a> {
    data: &'a str,
    folds: usize,
    stratified: bool,
    settings: &'a TrainConfig,
    std: &'static str,
    models: Vec<ModelFolds>,
}

/// One architecture's folds, with the mean and spread of their losses.
#[derive(Serialize)]
struct ModelFolds {
    name: String,
    architecture: String,
    params: usize,
    val_loss_mean: f64,
    val_loss_std: f64,
    test_loss_mean: f64,
    test_loss_std: f64,
    folds: Vec<FoldResult>,
}

/// One fold's run.
#[derive(Serialize)]
struct FoldResult {
    fold: usize,
    train_rows: usize,
    val_rows: usize,
    final_val_loss: f64,
    best_val_loss: f64,
    test_loss: f64,
    train_seconds: f64,
    history: History,
    run_dir: PathBuf,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

pub fn run(a: CvArgs) -> Result<()> {
    let layers: Vec<Vec<usize>> = if a.layers.is_empty() {
        vec![vec![128, 64, 32]]
    } else {
        a.layers.iter().map(|w| w.0.clone()).collect()
    };
    if a.folds < 2 {
        bail!(
            "--folds {}: cross-validation needs at least 2 folds",
            a.folds
        );
    }
    let config = a.schedule.config(a.epochs)?;
    // The data and the folds first: a fold count beyond the samples is an
    // error before any per-fold work (100,000,000 folds once looped here).
    let splits = a.data.load()?;
    let train = &splits.train;
    let labels = if a.no_stratify {
        None
    } else {
        train.labels.as_deref()
    };
    let folds = k_folds(train.rows, a.folds, labels, a.schedule.seed)?;
    claim("--out", &a.out, a.schedule.force, CV_FILES)?;
    let _lock = run_lock::lock(&a.out)?;
    dae_data::remove_orphan_temp_files(&a.out);
    let fold_dir =
        |enc: &[usize], f: usize| a.out.join(run_name(enc)).join(format!("fold-{}", f + 1));
    for enc in &layers {
        for f in 0..a.folds {
            let run = RunDir::new(&fold_dir(enc, f));
            if run.checkpoint().exists() && !a.schedule.force {
                bail!(
                    "--out {}: {} already holds a trained run; pass --force to replace it",
                    a.out.display(),
                    run.path.display()
                );
            }
        }
    }
    if !a.schedule.quiet {
        say!(
            "data: {}\n{}-fold cross-validation on the {} training samples ({}), test set scored by each fold's model",
            splits.description,
            a.folds,
            train.rows,
            if labels.is_some() { "stratified by class" } else { "not stratified" }
        );
    }
    let mut models = Vec::new();
    let mut csv = String::from(
        "model,fold,train_rows,val_rows,final_val_loss,best_val_loss,test_loss,train_seconds\n",
    );
    for enc in &layers {
        let arch = Architecture::new(train.dim, enc.clone())?;
        let mut fold_results = Vec::new();
        for (f, val_rows) in folds.iter().enumerate() {
            let in_fold = {
                let mut mark = vec![false; train.rows];
                val_rows.iter().for_each(|&i| mark[i] = true);
                mark
            };
            let train_rows: Vec<usize> = (0..train.rows).filter(|&i| !in_fold[i]).collect();
            let fold_train = train.select(&train_rows, "train");
            let fold_val = train.select(val_rows, "validation");
            let run = RunDir::new(&fold_dir(enc, f));
            claim("--out", &run.path, a.schedule.force, RUN_FILES)?;
            dae_data::remove_orphan_temp_files(&run.path);
            let data = format!("{} [fold {} of {}]", splits.description, f + 1, a.folds);
            let session = Session {
                run: &run,
                arch: &arch,
                config: &config,
                data: &data,
                device: a.schedule.device,
                quiet: a.schedule.quiet,
                label: format!("[{} fold {}/{}] ", run_name(enc), f + 1, a.folds),
            };
            let mut t = training::train(&session, Start::Fresh, &fold_train, &fold_val)?;
            let test_loss = t.backend.evaluate(&splits.test, false)?.loss;
            let h = &t.history;
            let final_val = *h.val_loss.last().unwrap();
            let best_val = h.val_loss.iter().cloned().fold(f64::MAX, f64::min);
            csv += &format!(
                "{},{},{},{},{final_val},{best_val},{test_loss},{}\n",
                run_name(enc),
                f + 1,
                fold_train.rows,
                fold_val.rows,
                t.train_seconds
            );
            fold_results.push(FoldResult {
                fold: f + 1,
                train_rows: fold_train.rows,
                val_rows: fold_val.rows,
                final_val_loss: final_val,
                best_val_loss: best_val,
                test_loss,
                train_seconds: t.train_seconds,
                history: h.clone(),
                run_dir: run.path.clone(),
            });
        }
        let vals: Vec<f64> = fold_results.iter().map(|r| r.final_val_loss).collect();
        let tests: Vec<f64> = fold_results.iter().map(|r| r.test_loss).collect();
        let (vm, vs) = mean_std(&vals);
        let (tm, ts) = mean_std(&tests);
        models.push(ModelFolds {
            name: run_name(enc),
            architecture: arch.describe(),
            params: arch.param_count(),
            val_loss_mean: vm,
            val_loss_std: vs,
            test_loss_mean: tm,
            test_loss_std: ts,
            folds: fold_results,
        });
    }

    say!(
        "\n{:<20}{:>6}{:>20}{:>20}",
        "model",
        "fold",
        "val_loss",
        "test_loss"
    );
    for m in &models {
        for f in &m.folds {
            say!(
                "{:<20}{:>6}{:>20.5}{:>20.5}",
                m.name,
                f.fold,
                f.final_val_loss,
                f.test_loss
            );
        }
        let pm = |mean: f64, std: f64| format!("{mean:.5} ± {std:.5}");
        say!(
            "{:<20}{:>6}{:>20}{:>20}",
            m.name,
            "mean",
            pm(m.val_loss_mean, m.val_loss_std),
            pm(m.test_loss_mean, m.test_loss_std)
        );
    }
    let out = RunDir::new(&a.out);
    let report = CvReport {
        data: &splits.description,
        folds: a.folds,
        stratified: labels.is_some(),
        settings: &config,
        std: "sample standard deviation (n-1)",
        models,
    };
    out.save_json("cv.json", &report)?;
    dae_data::write_atomically(&a.out.join("cv.csv"), csv.as_bytes())?;
    say!("wrote {}/cv.json and cv.csv", a.out.display());
    Ok(())
}
