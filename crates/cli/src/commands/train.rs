//! `dae train`: the lab's training run, or any other architecture/dataset.

use crate::args::{check_moment_decay, parse_layers, positive, DataArgs, DeviceChoice};
use crate::commands::figure::write_figure;
use crate::figure::parse_image_shape;
use crate::run_dir::{check_out_dir, claim, unclaim, RunDir, RUN_FILES};
use crate::run_lock;
use crate::training::{self, Session, Start, Trained};
use anyhow::{bail, Result};
use clap::Args;
use dae_core::schedule::{BatchScaling, ScheduleKind, Warmup};
use dae_core::Precision;
use dae_model::{
    format_summary, Architecture, Optimizer, SummaryTable, TargetReached, TrainConfig,
};
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
    /// Learning-rate shape after warmup: constant, cosine, linear or onecycle [default: constant]
    #[arg(long)]
    pub schedule: Option<ScheduleKind>,
    /// Warmup from lr/steps up to the peak: epochs (2, 0.5) or steps (500s) [default: 0]
    #[arg(long, value_name = "EPOCHS|Ns")]
    pub warmup: Option<Warmup>,
    /// The last step's learning rate as a fraction of the peak, in [0, 1] [default: 0]
    #[arg(long, value_name = "FRACTION")]
    pub final_lr: Option<f64>,
    /// Scale the peak learning rate with --batch / --reference-batch: none, sqrt or linear [default: none]
    #[arg(long)]
    pub lr_scaling: Option<BatchScaling>,
    /// The batch --lr was tuned at, for --lr-scaling [default: 256]
    #[arg(long, value_name = "N")]
    pub reference_batch: Option<usize>,
    /// Stop after the first epoch whose val_loss is at most this, and report the time to it
    #[arg(long, value_name = "LOSS")]
    pub target_val_loss: Option<f64>,
    /// Optimizer: adam, adamw (decoupled weight decay) or lamb (per-layer
    /// trust ratios) [default: adam]
    #[arg(long, value_parser = parse_optimizer)]
    pub optimizer: Option<Optimizer>,
    /// Weight decay of adamw and lamb (biases excluded with lamb) [default: 0]
    #[arg(long, value_name = "X")]
    pub weight_decay: Option<f64>,
    /// Decay of the first-moment (gradient) average, in [0, 1) [default: 0.9]
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Decay of the second-moment average, in [0, 1) [default: 0.999]
    #[arg(long)]
    pub beta2: Option<f64>,
    /// The optimizer's ε beside √v [default: 1e-7, Keras']
    #[arg(long)]
    pub epsilon: Option<f64>,
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
    /// Time to quality, when --target-val-loss was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<TargetReport<'a>>,
}

/// run.json's `target`: the value, whether it was met, and when.
#[derive(Serialize)]
struct TargetReport<'a> {
    value: f64,
    reached: bool,
    #[serde(flatten)]
    at: Option<&'a TargetReached>,
}

/// The summary's clause on the target, e.g. "reached val_loss ≤ 0.3 after
/// 4 epochs (940 steps, 12.1 s training, 14.0 s wall)".
fn describe_target(value: f64, reached: Option<&TargetReached>, epochs: usize) -> String {
    match reached {
        Some(r) => format!(
            "reached val_loss ≤ {value} after {} epochs ({} steps, {:.1} s training, {:.1} s wall)",
            r.epoch, r.steps, r.train_seconds, r.wall_seconds
        ),
        None => format!("did not reach val_loss ≤ {value} in {epochs} epochs"),
    }
}

/// On --resume: the schedule flags must repeat the run's settings (its
/// rates so far and to come depend on them).
fn refuse_schedule_changes(a: &TrainArgs, stored: &TrainConfig) -> Result<()> {
    let differs = |flag: &str, given: Option<String>, stored: String| -> Result<()> {
        match given {
            Some(g) if g != stored => {
                bail!("{flag} {g} differs from the resumed run's {stored}")
            }
            _ => Ok(()),
        }
    };
    differs(
        "--schedule",
        a.schedule.map(|k| k.name().to_string()),
        stored.schedule.name().to_string(),
    )?;
    differs(
        "--warmup",
        a.warmup.map(Warmup::describe),
        stored.warmup.describe(),
    )?;
    differs(
        "--final-lr",
        a.final_lr.map(|f| f.to_string()),
        stored.final_lr.to_string(),
    )?;
    differs(
        "--lr-scaling",
        a.lr_scaling.map(|b| b.name().to_string()),
        stored.lr_scaling.name().to_string(),
    )?;
    differs(
        "--reference-batch",
        a.reference_batch.map(|r| r.to_string()),
        stored.reference_batch.to_string(),
    )
}

fn parse_optimizer(s: &str) -> Result<Optimizer, String> {
    Optimizer::parse(s).map_err(|e| e.to_string())
}

/// `--optimizer`, `--weight-decay`, `--beta1`, `--beta2` and `--epsilon`
/// into `config` (a resumed run's must not change), checked.
fn apply_optimizer_flags(a: &TrainArgs, config: &mut TrainConfig, resuming: bool) -> Result<()> {
    if resuming {
        if let Some(o) = a.optimizer.filter(|&o| o != config.optimizer) {
            bail!(
                "--optimizer {o} differs from the resumed run's {}",
                config.optimizer
            );
        }
        for (flag, given, stored) in [
            ("--weight-decay", a.weight_decay, config.weight_decay),
            ("--beta1", a.beta1, config.beta1),
            ("--beta2", a.beta2, config.beta2),
            ("--epsilon", a.epsilon, config.epsilon),
        ] {
            if let Some(g) = given.filter(|&g| g != stored) {
                bail!("{flag} {g} differs from the resumed run's {stored}");
            }
        }
        return Ok(());
    }
    for (flag, given) in [("--beta1", a.beta1), ("--beta2", a.beta2)] {
        if let Some(b) = given {
            check_moment_decay(flag, b)?;
        }
    }
    if let Some(e) = a.epsilon.filter(|e| !(e.is_finite() && *e > 0.0)) {
        bail!("--epsilon {e}: must be a positive finite number");
    }
    config.beta1 = a.beta1.unwrap_or(config.beta1);
    config.beta2 = a.beta2.unwrap_or(config.beta2);
    config.epsilon = a.epsilon.unwrap_or(config.epsilon);
    config.optimizer = a.optimizer.unwrap_or(config.optimizer);
    if let Some(w) = a.weight_decay {
        if !(w.is_finite() && w >= 0.0) {
            bail!("--weight-decay must be a non-negative finite number, got {w}");
        }
        if !config.optimizer.decays() {
            bail!(
                "--weight-decay {w}: plain adam has no weight decay; use --optimizer adamw (or lamb)"
            );
        }
        config.weight_decay = w;
    }
    Ok(())
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
            refuse_schedule_changes(&a, &ck.config)?;
            if let Some(e) = a.epochs {
                // A decaying schedule spans the run's epochs: more of them
                // would move every rate from here on.
                if e != config.epochs && config.schedule != ScheduleKind::Constant {
                    bail!(
                        "--epochs {e} differs from the resumed run's {}: its {} schedule spans \
                         those epochs (start a new run to train longer)",
                        config.epochs,
                        config.schedule.name()
                    );
                }
                config.epochs = e;
            }
            if a.target_val_loss.is_some() {
                config.target_val_loss = a.target_val_loss;
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
                schedule: a.schedule.unwrap_or(lab.schedule),
                warmup: a.warmup.unwrap_or(lab.warmup),
                final_lr: a.final_lr.unwrap_or(lab.final_lr),
                lr_scaling: a.lr_scaling.unwrap_or(lab.lr_scaling),
                reference_batch: a.reference_batch.unwrap_or(lab.reference_batch),
                target_val_loss: a.target_val_loss,
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
    if let Some(t) = config.target_val_loss {
        if !(t.is_finite() && t > 0.0) {
            bail!("--target-val-loss must be a positive finite number, got {t}");
        }
    }
    apply_optimizer_flags(&a, &mut config, resumed.is_some())?;
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
    // The schedule's checks (warmup within the run, final fraction, scaling)
    // need the data's row count: before anything is created.
    config.lr_schedule(splits.train.rows)?;
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
        reached,
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
            target: config.target_val_loss.map(|value| TargetReport {
                value,
                reached: reached.is_some(),
                at: reached.as_ref(),
            }),
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
    if let Some(value) = config.target_val_loss {
        say!(
            "{}",
            describe_target(value, reached.as_ref(), history.epochs_done())
        );
    }
    Ok(())
}
