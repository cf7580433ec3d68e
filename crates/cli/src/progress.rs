//! Reporting training as it goes: a progress bar per epoch on a terminal,
//! one plain line per epoch otherwise, nothing but errors with --quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Refresh the bar's message every this many steps (formatting is not free).
const MESSAGE_EVERY: usize = 8;

pub enum Mode {
    Bar,
    Lines,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            bar: None,
            started: Instant::now(),
        }
    }

    pub fn quiet(&self) -> bool {
        matches!(self.mode, Mode::Quiet)
    }

    pub fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.started = Instant::now();
        if let Mode::Bar = self.mode {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta_precise} {msg}",
                )
                .unwrap()
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
            self.bar = Some(bar);
        }
    }

    pub fn step(&mut self, step: usize, samples_done: usize, loss: Option<f64>) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            if step.is_multiple_of(MESSAGE_EVERY) {
                let rate = samples_done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                let loss = loss.map_or(String::new(), |l| format!("loss: {l:.4} "));
                bar.set_message(format!("{loss}{} samples/s", thousands(rate)));
            }
        }
    }

    /// Prints the finished epoch's line (to stdout, so logs capture it).
    pub fn epoch_end(&mut self, line: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.quiet() {
            say!("{line}");
        }
    }
}

/// 48213.7 → "48,214".
pub fn thousands(v: f64) -> String {
    dae_model::group_digits(v.round().max(0.0) as usize)
}
