//! `dae scan`: for each batch size, a short search of the peak learning
//! rate (a log grid around the square-root scaling rule, warmup + cosine),
//! then the epochs, steps and time each needs to reach a target validation
//! loss (or the best loss within the budget): the steps-to-result curve of
//! Shallue et al. (JMLR 2019). The critical batch size comes from fitting
//! S(B) = S_min·(1 + B_crit/B) to the steps (McCandlish et al. 2018,
//! eq. 2.11), and the gradient noise scale B_simple = tr(Σ)/|G|² is
//! measured beside it from gradient norms of a full and a half batch, at
//! chosen steps of a run at the reference batch (it grows as the loss
//! falls, so its value at the start says little about the critical batch).

use crate::args::{check_moment_decay, parse_layers, positive, DataArgs, Widths};
use crate::chart::{LineChart, Panel, Scale, Series};
use crate::device::{build_backend, resolve, DeviceChoice};
use anyhow::{bail, Result};
use clap::Args;
use dae_core::rng::epoch_permutation;
use dae_core::schedule::{BatchScaling, ScheduleKind, Warmup};
use dae_core::Precision;
use dae_data::Dataset;
use dae_model::{
    fit, Architecture, Backend, EpochStats, FitObserver, History, StepObserver, TrainConfig,
    TrainState,
};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Batch sizes to scan
    #[arg(long, value_delimiter = ',', required = true, value_parser = positive)]
    pub batch_sizes: Vec<usize>,
    /// Validation loss to reach
    #[arg(long)]
    pub target: f64,
    /// Epoch budget of each trial (the cosine's length)
    #[arg(long, default_value_t = 20, value_parser = positive)]
    pub max_epochs: usize,
    /// Peak learning rates to try at every batch size [default: ½, 1 and 2× the square-root rule]
    #[arg(long, value_delimiter = ',')]
    pub lrs: Vec<f64>,
    /// Learning rate of the rule at --reference-batch (scaled by √(B/256))
    #[arg(long, default_value_t = 4e-3)]
    pub base_lr: f64,
    #[arg(long, default_value_t = 256, value_parser = positive)]
    pub reference_batch: usize,
    /// Warmup of each trial, in epochs
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Each trial's last learning rate as a fraction of its peak
    #[arg(long, default_value_t = 0.0)]
    pub final_lr: f64,
    /// Adam's second-moment decay in every trial (0.95 serves large batches)
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    #[arg(long, value_parser = parse_layers, default_value = "128,64,32")]
    pub layers: Widths,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Batches of each size the noise scale averages over
    #[arg(long, default_value_t = 16, value_parser = positive)]
    pub noise_batches: usize,
    /// Steps of a run at --reference-batch (the rule's peak, warmup +
    /// cosine over --max-epochs) at which the noise scale is measured
    /// [default: 0 and 1/20, 1/4, 1/2 and all of that run's steps]
    #[arg(long, value_delimiter = ',')]
    pub noise_steps: Vec<usize>,
    /// Where scan.json, scan.csv and scan.png go
    #[arg(long, default_value = "runs/scan")]
    pub out: PathBuf,
    /// Add dae's files to a --out folder that dae did not make
    #[arg(long)]
    pub force: bool,
}

/// What `dae scan` writes into its --out.
const SCAN_FILES: &[&str] = &["scan.json", "scan.csv", "scan.png"];

/// One trial: a batch size at one peak learning rate.
#[derive(Clone, Debug, Serialize)]
struct Trial {
    batch: usize,
    peak_lr: f64,
    reached: bool,
    /// Epochs, steps and samples until the target (or the whole budget).
    epochs: usize,
    steps: usize,
    samples: usize,
    train_seconds: f64,
    best_val_loss: f64,
}

/// The best trial of a batch size: the fewest steps to the target, or,
/// when none reached it, the lowest loss.
fn best(trials: &[Trial]) -> &Trial {
    trials
        .iter()
        .min_by(|a, b| match (a.reached, b.reached) {
            (true, true) => a.steps.cmp(&b.steps),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => a.best_val_loss.total_cmp(&b.best_val_loss),
        })
        .expect("at least one trial per batch size")
}

/// S(B) = S_min·(1 + B_crit/B), fitted by least squares in 1/B: S is
/// linear in 1/B with intercept S_min and slope S_min·B_crit. None with
/// fewer than two batch sizes that reached the target, or a fit that is not
/// a decreasing curve.
fn critical_batch(points: &[(usize, usize)]) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|&(b, _)| 1.0 / b as f64).collect();
    let ys: Vec<f64> = points.iter().map(|&(_, s)| s as f64).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let s_min = my - slope * mx;
    (s_min > 0.0 && slope > 0.0).then(|| (s_min, slope / s_min))
}

#[derive(Serialize)]
struct NoiseScale {
    /// Optimizer steps the weights had taken.
    step: usize,
    batch: usize,
    batches: usize,
    /// |G|² and tr(Σ) estimates, and B_simple = tr(Σ)/|G|².
    grad_norm_sq: f64,
    trace_sigma: f64,
    b_simple: f64,
}

#[derive(Serialize)]
struct ScanReport {
    schema: &'static str,
    data: String,
    model: String,
    target: f64,
    max_epochs: usize,
    warmup_epochs: f64,
    schedule: &'static str,
    final_lr: f64,
    beta2: f64,
    device: String,
    trials: Vec<Trial>,
    best: Vec<Trial>,
    /// From S(B) = S_min·(1 + B_crit/B) over the batch sizes that reached
    /// the target.
    s_min: Option<f64>,
    critical_batch: Option<f64>,
    /// The run the noise scale was measured along, and its measurements.
    noise_run: Option<NoiseRun>,
}

#[derive(Serialize)]
struct NoiseRun {
    batch: usize,
    peak_lr: f64,
    steps: usize,
    at: Vec<NoiseScale>,
}

/// Times the epochs of a trial and shows its progress, one line per epoch.
struct TrialObserver {
    label: String,
    train_seconds: f64,
}

impl StepObserver for TrialObserver {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
    fn stop_requested(&self) -> bool {
        crate::signals::stop_requested()
    }
}

impl FitObserver for TrialObserver {
    fn on_epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn on_epoch_end(
        &mut self,
        s: &EpochStats,
        _: &History,
        _: &mut dyn Backend,
    ) -> dae_model::Result<()> {
        self.train_seconds += s.train_seconds;
        say_err!(
            "{} epoch {}/{}: loss {:.4} val_loss {:.4} ({:.1}s)",
            self.label,
            s.epoch,
            s.epochs,
            s.loss,
            s.val_loss,
            s.train_seconds
        );
        Ok(())
    }
}

/// The peaks tried at `batch`: the given ones, or ½, 1 and 2× the rule.
fn peaks(a: &ScanArgs, batch: usize) -> Result<Vec<f64>> {
    if !a.lrs.is_empty() {
        return Ok(a.lrs.clone());
    }
    let rule = dae_core::schedule::scaled_peak(
        a.base_lr as f32,
        batch,
        a.reference_batch,
        BatchScaling::Sqrt,
    )? as f64;
    Ok(vec![rule / 2.0, rule, rule * 2.0])
}

/// The scan's recipe at `batch` and peak `lr`: warmup, then a cosine over
/// the budget down to `--final-lr`, with `--beta2`.
fn recipe(a: &ScanArgs, batch: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs: a.max_epochs,
        batch,
        seed: a.seed,
        lr,
        schedule: ScheduleKind::Cosine,
        warmup: Warmup::Epochs(a.warmup),
        final_lr: a.final_lr,
        beta2: a.beta2,
        ..TrainConfig::lab()
    }
}

fn trial(
    a: &ScanArgs,
    arch: &Architecture,
    train: &Dataset,
    validation: &Dataset,
    batch: usize,
    peak_lr: f64,
    device: &crate::device::Device,
) -> Result<Trial> {
    let cfg = TrainConfig {
        target_val_loss: Some(a.target),
        ..recipe(a, batch, peak_lr)
    };
    let mut backend = build_backend(device, arch, &cfg, TrainState::initialize(arch, cfg.seed))?;
    let mut history = History::default();
    let mut observer = TrialObserver {
        label: format!("batch {batch} lr {peak_lr:.2e}:"),
        train_seconds: 0.0,
    };
    let outcome = fit(
        backend.as_mut(),
        train,
        validation,
        &cfg,
        &mut history,
        &mut observer,
    )?;
    let epochs = history.epochs_done();
    let best_val_loss = history
        .val_loss
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let steps_per_epoch = cfg.steps_per_epoch(train.rows);
    Ok(Trial {
        batch,
        peak_lr,
        reached: outcome.reached.is_some(),
        epochs,
        steps: epochs * steps_per_epoch,
        samples: epochs * train.rows,
        train_seconds: observer.train_seconds,
        best_val_loss,
    })
}

/// B_simple at the backend's current weights from `batches` disjoint
/// batches of B and of B/2 rows (a fixed draw of the training rows):
/// E|G_B|² = |G|² + tr(Σ)/B, solved from the two sizes.
fn noise_scale(
    backend: &mut dyn Backend,
    train: &Dataset,
    batch: usize,
    batches: usize,
    seed: u64,
    step: usize,
) -> Result<NoiseScale> {
    let half = batch / 2;
    let perm = epoch_permutation(seed, u64::MAX, train.rows);
    let norm_sq = |g: &[f32]| g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
    let (mut big, mut small) = (0.0, 0.0);
    for rows in perm.chunks_exact(batch).take(batches) {
        big += norm_sq(&backend.loss_and_gradients(train, rows)?.1);
        small += norm_sq(&backend.loss_and_gradients(train, &rows[..half])?.1);
    }
    let (big, small) = (big / batches as f64, small / batches as f64);
    let (bb, bs) = (batch as f64, half as f64);
    let grad_norm_sq = (bb * big - bs * small) / (bb - bs);
    let trace_sigma = (small - big) / (1.0 / bs - 1.0 / bb);
    Ok(NoiseScale {
        step,
        batch,
        batches,
        grad_norm_sq,
        trace_sigma,
        b_simple: trace_sigma / grad_norm_sq,
    })
}

/// The steps at which the noise run measures: the given ones (checked
/// against the run's `total` steps), or 0, 1/20, 1/4, 1/2 and all of them.
fn noise_steps(given: &[usize], total: usize) -> Result<Vec<usize>> {
    let mut steps = if given.is_empty() {
        vec![0, total / 20, total / 4, total / 2, total]
    } else {
        given.to_vec()
    };
    if let Some(s) = steps.iter().find(|&&s| s > total) {
        bail!("--noise-steps {s}: the noise run has only {total} steps (--max-epochs)");
    }
    steps.sort_unstable();
    steps.dedup();
    Ok(steps)
}

/// Trains from step `done` to step `target` of `cfg`'s run by pieces of
/// each epoch's shuffle, aligned on its batches: exactly the steps `fit`
/// takes (the schedule must be set on `backend`).
fn advance(
    backend: &mut dyn Backend,
    cfg: &TrainConfig,
    train: &Dataset,
    mut done: usize,
    target: usize,
    observer: &mut dyn StepObserver,
) -> Result<()> {
    let per_epoch = cfg.steps_per_epoch(train.rows);
    while done < target {
        let epoch = done / per_epoch;
        let perm = epoch_permutation(cfg.seed, epoch as u64, train.rows);
        let end_step = target.min((epoch + 1) * per_epoch);
        let from = (done - epoch * per_epoch) * cfg.batch;
        let to = ((end_step - epoch * per_epoch) * cfg.batch).min(train.rows);
        backend.train_epoch(train, &perm[from..to], cfg.batch, observer)?;
        done = end_step;
    }
    Ok(())
}

/// Trains one run of the scan's recipe at `cfg.batch` and measures the
/// noise scale whenever it has taken one of `steps` (sorted) steps.
#[allow(clippy::too_many_arguments)]
fn noise_along_run(
    cfg: &TrainConfig,
    arch: &Architecture,
    train: &Dataset,
    noise_batch: usize,
    batches: usize,
    steps: &[usize],
    device: &crate::device::Device,
) -> Result<Vec<NoiseScale>> {
    let mut backend = build_backend(device, arch, cfg, TrainState::initialize(arch, cfg.seed))?;
    backend.set_schedule(cfg.lr_schedule(train.rows)?)?;
    let mut observer = TrialObserver {
        label: String::new(),
        train_seconds: 0.0,
    };
    let (mut done, mut out) = (0, Vec::new());
    for &step in steps {
        advance(backend.as_mut(), cfg, train, done, step, &mut observer)?;
        done = step;
        let n = noise_scale(
            backend.as_mut(),
            train,
            noise_batch,
            batches,
            cfg.seed,
            step,
        )?;
        say_err!("noise scale at step {step}: B_simple ≈ {:.0}", n.b_simple);
        out.push(n);
    }
    Ok(out)
}

pub fn run(a: ScanArgs) -> Result<()> {
    if !(a.target.is_finite() && a.target > 0.0) {
        bail!("--target {}: must be a positive finite loss", a.target);
    }
    if a.batch_sizes.is_empty() {
        bail!("--batch-sizes: give at least one batch size");
    }
    if !(a.warmup.is_finite() && a.warmup >= 0.0 && a.warmup < a.max_epochs as f64) {
        bail!(
            "--warmup {}: must be at least 0 and shorter than --max-epochs {}",
            a.warmup,
            a.max_epochs
        );
    }
    if let Some(lr) = a.lrs.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        bail!("--lrs: {lr} is not a positive learning rate");
    }
    if !(0.0..=1.0).contains(&a.final_lr) {
        bail!(
            "--final-lr {}: must be a fraction of the peak in [0, 1]",
            a.final_lr
        );
    }
    check_moment_decay("--beta2", a.beta2)?;
    if !(a.base_lr.is_finite() && a.base_lr > 0.0) {
        bail!("--base-lr {}: must be a positive learning rate", a.base_lr);
    }
    crate::run_dir::claim("--out", &a.out, a.force, SCAN_FILES)?;
    let splits = a.data.load()?;
    let (train, validation) = (&splits.train, &splits.test);
    let arch = Architecture::new(train.dim, a.layers.0.clone())?;
    let device = resolve(a.device, Precision::Fp32, false)?;
    // The noise scale's batch: the largest scanned one of which
    // `--noise-batches` disjoint batches fit in the training rows.
    let noise_batch = a
        .batch_sizes
        .iter()
        .copied()
        .filter(|&b| b >= 2 && b.saturating_mul(a.noise_batches) <= train.rows)
        .max();
    let noise_cfg = recipe(&a, a.reference_batch, a.base_lr);
    let noise_total = a.max_epochs * noise_cfg.steps_per_epoch(train.rows);
    // Checked before the long part.
    let noise_at = noise_steps(&a.noise_steps, noise_total)?;
    crate::signals::install();
    let started = Instant::now();
    let mut trials = Vec::new();
    let mut best_per_batch = Vec::new();
    let mut device_name = String::new();
    for &batch in &a.batch_sizes {
        let mut at_batch = Vec::new();
        for lr in peaks(&a, batch)? {
            let t = trial(&a, &arch, train, validation, batch, lr, &device)?;
            say!(
                "batch {batch:>6} lr {lr:.2e}: {} after {} epochs ({} steps, {:.1}s); best val_loss {:.4}",
                if t.reached { "reached" } else { "not reached" },
                t.epochs,
                t.steps,
                t.train_seconds,
                t.best_val_loss
            );
            at_batch.push(t);
        }
        best_per_batch.push(best(&at_batch).clone());
        trials.extend(at_batch);
        if device_name.is_empty() {
            let cfg = TrainConfig::lab();
            device_name =
                build_backend(&device, &arch, &cfg, TrainState::initialize(&arch, 1))?.device();
        }
    }
    let reached: Vec<(usize, usize)> = best_per_batch
        .iter()
        .filter(|t| t.reached)
        .map(|t| (t.batch, t.steps))
        .collect();
    let fit_curve = critical_batch(&reached);
    let noise = match noise_batch {
        None => {
            say_err!(
                "noise scale skipped: no scanned batch size of 2 or more has {} disjoint batches in {} training rows",
                a.noise_batches,
                train.rows
            );
            None
        }
        Some(nb) => {
            let at = noise_along_run(
                &noise_cfg,
                &arch,
                train,
                nb,
                a.noise_batches,
                &noise_at,
                &device,
            )?;
            Some(NoiseRun {
                batch: noise_cfg.batch,
                peak_lr: noise_cfg.lr,
                steps: noise_total,
                at,
            })
        }
    };
    say!(
        "\n{:>8} {:>10} {:>7} {:>8} {:>10} {:>9}",
        "batch",
        "peak lr",
        "epochs",
        "steps",
        "train s",
        "val_loss"
    );
    let mut csv =
        String::from("batch,peak_lr,reached,epochs,steps,samples,train_seconds,best_val_loss\n");
    for t in &best_per_batch {
        say!(
            "{:>8} {:>10.2e} {:>7} {:>8} {:>10.1} {:>9.4}{}",
            t.batch,
            t.peak_lr,
            t.epochs,
            t.steps,
            t.train_seconds,
            t.best_val_loss,
            if t.reached {
                ""
            } else {
                "  (target not reached)"
            }
        );
    }
    for t in &trials {
        csv += &format!(
            "{},{},{},{},{},{},{},{}\n",
            t.batch,
            t.peak_lr,
            t.reached,
            t.epochs,
            t.steps,
            t.samples,
            t.train_seconds,
            t.best_val_loss
        );
    }
    match fit_curve {
        Some((s_min, b_crit)) => say!(
            "steps to val_loss ≤ {}: S(B) ≈ {s_min:.0}·(1 + {b_crit:.0}/B): critical batch ≈ {b_crit:.0}",
            a.target
        ),
        None => say!("critical batch: needs two or more batch sizes that reach the target on a decreasing curve"),
    }
    if let Some(run) = &noise {
        let first = &run.at[0];
        say!(
            "gradient noise scale B_simple along a batch-{} run (peak {:.2e}, {} steps), from batches of {} and {}, {} each:",
            run.batch,
            run.peak_lr,
            run.steps,
            first.batch,
            first.batch / 2,
            first.batches
        );
        say!(
            "{:>8} {:>10} {:>12} {:>12}",
            "step",
            "B_simple",
            "|G|²",
            "tr(Σ)"
        );
        for n in &run.at {
            let b = if n.grad_norm_sq > 0.0 {
                format!("{:.0}", n.b_simple)
            } else {
                "n/a".to_string()
            };
            say!(
                "{:>8} {:>10} {:>12.4e} {:>12.4e}",
                n.step,
                b,
                n.grad_norm_sq,
                n.trace_sigma
            );
        }
    }
    say!("scan took {:.0}s", started.elapsed().as_secs_f64());
    let report = ScanReport {
        schema: "dae-scan-1",
        data: a.data.path()?.display().to_string(),
        model: arch.describe(),
        target: a.target,
        max_epochs: a.max_epochs,
        warmup_epochs: a.warmup,
        schedule: "linear warmup, then cosine to final_lr x peak over the budget",
        final_lr: a.final_lr,
        beta2: a.beta2,
        device: device_name,
        trials,
        best: best_per_batch.clone(),
        s_min: fit_curve.map(|f| f.0),
        critical_batch: fit_curve.map(|f| f.1),
        noise_run: noise,
    };
    dae_data::write_atomically(
        &a.out.join("scan.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    dae_data::write_atomically(&a.out.join("scan.csv"), csv.as_bytes())?;
    let points = |f: &dyn Fn(&Trial) -> f64| -> Vec<(f64, f64)> {
        best_per_batch
            .iter()
            .filter(|t| t.reached)
            .map(|t| (t.batch as f64, f(t)))
            .collect()
    };
    let steps = points(&|t| t.steps as f64);
    if !steps.is_empty() {
        LineChart {
            title: format!("steps to val_loss ≤ {}", a.target),
            x_label: "batch size".into(),
            x_scale: Scale::Log2,
            panels: vec![Panel {
                y_label: "steps".into(),
                y_scale: Scale::Log10,
                series: vec![Series {
                    name: "best peak lr".into(),
                    points: steps,
                }],
            }],
        }
        .render_png(&a.out.join("scan.png"))?;
    }
    say!("wrote {}", a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_batch_of_an_exact_curve_is_recovered() {
        // S(B) = 1000·(1 + 2048/B) at powers of two.
        let points: Vec<(usize, usize)> = [256usize, 512, 1024, 4096, 16384]
            .iter()
            .map(|&b| (b, (1000.0 * (1.0 + 2048.0 / b as f64)).round() as usize))
            .collect();
        let (s_min, b_crit) = critical_batch(&points).unwrap();
        assert!((s_min - 1000.0).abs() < 1.0, "{s_min}");
        assert!((b_crit - 2048.0).abs() < 5.0, "{b_crit}");
        // One point, or steps that grow with the batch: no curve.
        assert!(critical_batch(&points[..1]).is_none());
        assert!(critical_batch(&[(256, 100), (1024, 400)]).is_none());
    }

    #[test]
    fn training_by_pieces_takes_the_steps_fit_takes() {
        use dae_data::Pixels;
        let rows = 70;
        let pixels: Vec<u8> = (0..rows * 6).map(|i| (i * 37 % 256) as u8).collect();
        let train = Dataset {
            name: "pieces".into(),
            rows,
            dim: 6,
            pixels: Pixels::U8(pixels.into()),
            labels: None,
            image_shape: None,
        };
        let arch = Architecture::new(6, vec![4, 2]).unwrap();
        // 70 rows in batches of 16: 5 steps an epoch, the last one partial.
        let cfg = TrainConfig {
            epochs: 3,
            batch: 16,
            seed: 5,
            lr: 1e-2,
            schedule: ScheduleKind::Cosine,
            warmup: Warmup::Epochs(1.0),
            ..TrainConfig::lab()
        };
        let device = crate::device::Device::Cpu;
        let start = || {
            build_backend(
                &device,
                &arch,
                &cfg,
                TrainState::initialize(&arch, cfg.seed),
            )
        };
        let mut whole = start().unwrap();
        let mut history = History::default();
        let mut quiet = TrialObserver {
            label: String::new(),
            train_seconds: 0.0,
        };
        fit(
            whole.as_mut(),
            &train,
            &train,
            &cfg,
            &mut history,
            &mut quiet,
        )
        .unwrap();
        let mut pieces = start().unwrap();
        pieces.set_schedule(cfg.lr_schedule(rows).unwrap()).unwrap();
        let mut done = 0;
        for step in [0, 2, 5, 7, 13, 15] {
            advance(
                pieces.as_mut(),
                &cfg,
                &train,
                done,
                step,
                &mut dae_model::Silent,
            )
            .unwrap();
            done = step;
        }
        let (a, b) = (whole.state().unwrap(), pieces.state().unwrap());
        assert_eq!(b.step, 15);
        assert_eq!(a, b, "the pieces' weights differ from fit's");
    }

    #[test]
    fn noise_steps_default_along_the_run_and_refuse_steps_beyond_it() {
        assert_eq!(noise_steps(&[], 4700).unwrap(), [0, 235, 1175, 2350, 4700]);
        assert_eq!(noise_steps(&[50, 0, 50], 100).unwrap(), [0, 50]);
        let e = noise_steps(&[101], 100).unwrap_err().to_string();
        assert!(
            e.contains("--noise-steps 101") && e.contains("100 steps"),
            "{e}"
        );
    }

    #[test]
    fn the_best_trial_reaches_first_then_has_the_lowest_loss() {
        let t = |reached, steps, loss| Trial {
            batch: 256,
            peak_lr: 1e-3,
            reached,
            epochs: 1,
            steps,
            samples: 1,
            train_seconds: 1.0,
            best_val_loss: loss,
        };
        let trials = [t(false, 10, 0.1), t(true, 50, 0.3), t(true, 40, 0.3)];
        assert_eq!(best(&trials).steps, 40);
        let trials = [t(false, 10, 0.3), t(false, 10, 0.2)];
        assert_eq!(best(&trials).best_val_loss, 0.2);
    }
}
