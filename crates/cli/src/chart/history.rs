//! The training history chart: loss and val_loss per epoch, and the
//! learning rate on a panel below when the run recorded it.

use super::{LineChart, Panel, Scale, Series};
use anyhow::{bail, Result};

/// `loss` and `val_loss` (one per epoch) and, when given, `lr`: one value
/// per epoch, or the same whole number per epoch (per step), spread over
/// each epoch.
pub fn history_chart(
    title: &str,
    loss: &[f64],
    val_loss: &[f64],
    lr: Option<&[f64]>,
) -> Result<LineChart> {
    let epochs = loss.len();
    if val_loss.len() != epochs {
        bail!(
            "history: {epochs} loss values but {} val_loss values",
            val_loss.len()
        );
    }
    let per_epoch = |name: &str, values: &[f64]| Series {
        name: name.into(),
        points: (1..).map(f64::from).zip(values.iter().copied()).collect(),
    };
    let mut panels = vec![Panel {
        y_label: "loss (BCE)".into(),
        y_scale: Scale::Linear,
        series: vec![per_epoch("loss", loss), per_epoch("val_loss", val_loss)],
    }];
    if let Some(lr) = lr {
        if epochs == 0 || lr.len() % epochs != 0 || lr.is_empty() {
            bail!(
                "history: {} learning rates for {epochs} epochs, neither one per epoch \
                 nor the same number per epoch",
                lr.len()
            );
        }
        let per = lr.len() / epochs;
        // Step s (0-based) ends at epoch (s + 1) / per: the last at `epochs`.
        let points = lr
            .iter()
            .enumerate()
            .map(|(s, &v)| ((s + 1) as f64 / per as f64, v))
            .collect();
        // A schedule that spans decades (step decay) reads on a log axis; one
        // that reaches 0 (warm-up, cosine) cannot.
        let (lo, hi) = lr
            .iter()
            .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let y_scale = if lo > 0.0 && hi / lo >= 100.0 {
            Scale::Log10
        } else {
            Scale::Linear
        };
        panels.push(Panel {
            y_label: "learning rate".into(),
            y_scale,
            series: vec![Series {
                name: if per == 1 {
                    "lr".into()
                } else {
                    "lr (per step)".into()
                },
                points,
            }],
        });
    }
    Ok(LineChart {
        title: title.into(),
        x_label: "epoch".into(),
        x_scale: Scale::Linear,
        panels,
    })
}
