//! `dae train`: the lab's training run, or any other architecture/dataset.

use crate::args::{parse_layers, positive, DataArgs, DeviceChoice};
use crate::commands::figure::write_figure;
use crate::figure::parse_image_shape;
use crate::run_dir::{check_out_dir, claim, unclaim, RunDir, RUN_FILES};
use crate::run_lock;
use crate::training::{self, Session, Start, Trained};
use anyhow::{bail, Result};
use clap::Args;
use dae_core::Precision;
use dae_model::{format_summary, Architecture, SummaryTable, TrainConfig};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Device to train on
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Epochs in total (with --resume: train on until this many) [default: 20]
    #[arg(long, value_parser = positive)]
    pub epochs: Option<usize>,
    /// Samples per step; the last step of an epoch takes the remainder [default: 256]
    #[arg(long, value_parser = positive)]
    pub batch: Option<usize>,
    /// Micro-batches of --batch rows per optimizer step, their gradients
    /// summed (a batch K times larger in the memory of one) [default: 1]
    #[arg(long, value_name = "K", value_parser = positive)]
    pub accumulate: Option<usize>,
    /// Seed of the weight init, the shuffles and the figure's samples [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Encoder widths; the decoder mirrors them [default: 128,64,32]
    #[arg(long, value_parser = parse_layers)]
    pub layers: Option<crate::args::Widths>,
    /// Adam learning rate [default: 0.001]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Matrix-product precision (tf32/bf16: CUDA tensor cores) [default: fp32]
    #[arg(long)]
    pub precision: Option<Precision>,
    /// Run directory for the checkpoint, history and figure [default: runs/ae-<layers>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory (its settings, optimizer state and position)
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Replace a run already in --out instead of refusing
    #[arg(long)]
    pub force: bool,
    /// Image (height,width) for the figure when the data is flat
    #[arg(long, value_name = "H,W")]
    pub image_shape: Option<String>,
    /// No progress output (errors and the final result only)
    #[arg(long)]
    pub quiet: bool,
}

/// run.json: what this invocation trained, on what, and how long it took.
#[derive(Serialize)]
struct RunReport<'a> {
    device: String,
    architecture: String,
    params: usize,
    encoder_params: usize,
    settings: &'a TrainConfig,
    data: &'a str,
    epochs_trained_now: usize,
    train_seconds_this_invocation: f64,
    wall_seconds_this_invocation: f64,
    final_loss: Option<f64>,
    final_val_loss: f64,
}

/// Refuses to train a fresh run over a trained one unless `force`.
fn refuse_existing_run(run: &RunDir, force: bool) -> Result<()> {
    if run.checkpoint().exists() && !force {
        bail!(
            "--out {}: already holds a trained run; pass --resume {} to continue it, \
             --force to replace it, or another --out",
            run.path.display(),
            run.path.display()
        );
    }
    Ok(())
}

pub fn run(a: TrainArgs) -> Result<()> {
    // Settings: from the flags, or from the run being resumed.
    let (run, mut config, encoder, resumed) = match &a.resume {
        Some(dir) => {
            let run = RunDir::new(dir);
            let ck = run.load_checkpoint()?;
            let mut config = ck.config.clone();
            for (flag, given, stored) in [
                ("--batch", a.batch.map(|v| v as u64), ck.config.batch as u64),
                (
                    "--accumulate",
                    a.accumulate.map(|v| v as u64),
                    ck.config.accumulate as u64,
                ),
                ("--seed", a.seed, ck.config.seed),
            ] {
                if given.is_some_and(|g| g != stored) {
                    bail!(
                        "{flag} {} differs from the resumed run's {stored}",
                        given.unwrap()
                    );
                }
            }
            if a.lr.is_some_and(|lr| lr != ck.config.lr) {
                bail!(
                    "--lr {} differs from the resumed run's {}",
                    a.lr.unwrap(),
                    ck.config.lr
                );
            }
            if a.layers.as_ref().is_some_and(|l| l.0 != ck.arch.encoder) {
                bail!(
                    "--layers differs from the resumed run's {}",
                    ck.arch.describe()
                );
            }
            if let Some(e) = a.epochs {
                config.epochs = e;
            }
            if ck.history.epochs_done() >= config.epochs {
                bail!(
                    "{} has already trained {} epochs; pass --epochs N (N > {}) to continue",
                    dir.display(),
                    ck.history.epochs_done(),
                    ck.history.epochs_done()
                );
            }
            (run, config, ck.arch.encoder.clone(), Some(ck))
        }
        None => {
            let lab = TrainConfig::lab();
            let encoder = a.layers.clone().map_or(vec![128, 64, 32], |l| l.0);
            let config = TrainConfig {
                epochs: a.epochs.unwrap_or(lab.epochs),
                batch: a.batch.unwrap_or(lab.batch),
                accumulate: a.accumulate.unwrap_or(lab.accumulate),
                seed: a.seed.unwrap_or(lab.seed),
                lr: a.lr.unwrap_or(lab.lr),
                precision: a.precision.unwrap_or(lab.precision),
                ..lab
            };
            let name = encoder
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-");
            let dir = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("runs/ae-{name}")));
            let run = RunDir::new(&dir);
            refuse_existing_run(&run, a.force)?;
            check_out_dir("--out", &dir, a.force, RUN_FILES)?;
            (run, config, encoder, None)
        }
    };
    if !(config.lr.is_finite() && config.lr > 0.0) {
        bail!("--lr must be a positive number, got {}", config.lr);
    }
    if let (Some(_), Some(p)) = (&resumed, a.precision) {
        config.precision = p;
    }
    let splits = a.data.load()?;
    let arch = Architecture::new(splits.train.dim, encoder)?;
    if let Some(ck) = &resumed {
        if ck.arch != arch {
            bail!(
                "{}: checkpoint architecture {} does not fit this data ({} values per sample)",
                run.checkpoint().display(),
                ck.arch.describe(),
                splits.train.dim
            );
        }
    }
    let image_shape = parse_image_shape(&a.image_shape, arch.input_dim)?;
    // After the data and settings check out; a run that then fails before
    // its first checkpoint removes the directory it created.
    let flag = if resumed.is_some() {
        "--resume"
    } else {
        "--out"
    };
    let created = claim(flag, &run.path, a.force, RUN_FILES)?;
    let locked = run_lock::lock(&run.path).and_then(|lock| {
        // Again under the lock: two trainers may both have passed the
        // check above before either wrote a checkpoint.
        if resumed.is_none() {
            refuse_existing_run(&run, a.force)?;
        }
        Ok(lock)
    });
    let _lock = locked.inspect_err(|_| {
        if created {
            unclaim(&run.path);
        }
    })?;
    dae_data::remove_orphan_temp_files(&run.path);

    if !a.quiet {
        say!("data: {}", splits.description);
        say!("{}", format_summary(&SummaryTable::autoencoder(&arch)));
        say!("{}", format_summary(&SummaryTable::encoder(&arch)));
    }
    let start = match resumed {
        Some(ck) => Start::Resume(ck.state, ck.history),
        None => Start::Fresh,
    };
    let started = Instant::now();
    let session = Session {
        run: &run,
        arch: &arch,
        config: &config,
        data: &splits.description,
        device: a.device,
        quiet: a.quiet,
        label: String::new(),
    };
    let Trained {
        mut backend,
        history,
        train_seconds,
    } = training::train(&session, start, &splits.train, &splits.test)
        .inspect_err(|_| {
            if created {
                // Only removes a directory holding nothing but dae's marker
                // and lock: never anything already saved.
                unclaim(&run.path);
            }
        })
        .map_err(|e| {
            if e.downcast_ref::<dae_model::Error>()
                .is_some_and(dae_model::Error::is_interrupted)
                && run.checkpoint().exists()
            {
                let hint = format!("continue with: dae train --resume {}", run.path.display());
                e.context(hint)
            } else {
                e
            }
        })?;

    let final_state = backend.state()?;
    dae_model::checkpoint::save_encoder(
        &arch,
        &final_state.params,
        &run.path.join("encoder.safetensors"),
    )?;
    let figure = run.figure();
    write_figure(
        backend.as_mut(),
        &splits,
        &arch,
        config.seed,
        image_shape,
        &figure,
        &run.checkpoint(),
    )?;
    let final_val = *history.val_loss.last().unwrap();
    run.save_json(
        "run.json",
        &RunReport {
            device: backend.device(),
            architecture: arch.describe(),
            params: arch.param_count(),
            encoder_params: arch.encoder_param_count(),
            settings: &config,
            data: &splits.description,
            epochs_trained_now: history.epochs_done(),
            train_seconds_this_invocation: train_seconds,
            wall_seconds_this_invocation: started.elapsed().as_secs_f64(),
            final_loss: history.loss.last().copied(),
            final_val_loss: final_val,
        },
    )?;
    say!(
        "done: {} epochs, final loss {:.4}, val_loss {:.4}; training time {:.1}s; wrote {} (checkpoint, encoder.safetensors, history.json, history.csv, history.png, figure.png, run.json)",
        history.epochs_done(),
        history.loss.last().unwrap(),
        final_val,
        train_seconds,
        run.path.display()
    );
    Ok(())
}
