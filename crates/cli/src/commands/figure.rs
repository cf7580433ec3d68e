//! `dae figure`, and the figure every training run writes.

use crate::args::{OpenRun, TrainedRunArgs};
use crate::figure::{guess_image_shape, parse_image_shape, render, FigureData, Row};
use anyhow::Result;
use clap::Args;
use dae_core::rng::{Purpose, Rng};
use dae_data::{DataSplits, Dataset};
use dae_model::{Architecture, Backend};
use std::path::{Path, PathBuf};

/// Images in the figure, as in the lab.
const SAMPLES: usize = 10;

#[derive(Args, Debug)]
pub struct FigureArgs {
    #[command(flatten)]
    pub source: TrainedRunArgs,
    /// Seed choosing the test images [default: the run's seed]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output PNG [default: RUN_DIR/figure.png]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Image (height,width) when the data is flat
    #[arg(long, value_name = "H,W")]
    pub image_shape: Option<String>,
}

/// Draws `SAMPLES` seeded random test images, their codes and reconstructions.
pub fn write_figure(
    backend: &mut dyn Backend,
    splits: &DataSplits,
    arch: &Architecture,
    seed: u64,
    image_shape: Option<(usize, usize)>,
    path: &Path,
    checkpoint: &Path,
) -> Result<()> {
    let (titles, rows, originals) = sample_test_images(splits, seed);
    let codes = backend.encode(&splits.test, &rows)?;
    let reconstructions = backend.reconstruct(&splits.test, &rows)?;
    crate::outputs::ensure_finite(checkpoint, "codes", &codes)?;
    crate::outputs::ensure_finite(checkpoint, "reconstructions", &reconstructions)?;
    render(
        &FigureData {
            image: image_shape_of(&splits.test, image_shape),
            titles,
            rows: vec![
                Row::Images {
                    label: "original".into(),
                    values: &originals,
                },
                Row::Codes {
                    label: "code".into(),
                    values: &codes,
                    dim: arch.code_dim(),
                },
                Row::Images {
                    label: "reconstruction".into(),
                    values: &reconstructions,
                },
            ],
        },
        path,
    )
}

/// `SAMPLES` seeded random test rows: their titles, indices and pixels.
pub fn sample_test_images(splits: &DataSplits, seed: u64) -> (Vec<String>, Vec<u32>, Vec<f32>) {
    let test = &splits.test;
    let rows: Vec<u32> = Rng::new(seed, Purpose::Sample, 0)
        .sample_indices(test.rows, SAMPLES)
        .into_iter()
        .map(|r| r as u32)
        .collect();
    let mut originals = vec![0.0; rows.len() * test.dim];
    test.gather(&rows, &mut originals);
    let titles = rows
        .iter()
        .map(|&r| match test.label(r as usize) {
            Some(l) => splits.class_name(l),
            None => format!("#{r}"),
        })
        .collect();
    (titles, rows, originals)
}

/// The image shape to draw: given, from the data, or the nearest square.
pub fn image_shape_of(data: &Dataset, given: Option<(usize, usize)>) -> (usize, usize) {
    given
        .or(data.image_shape)
        .unwrap_or_else(|| guess_image_shape(data.dim))
}

pub fn run(a: FigureArgs) -> Result<()> {
    if let Some(out) = &a.out {
        crate::out_guard::refuse_input_as_output("--out", out, &a.source.inputs("figure.png"))?;
    }
    let OpenRun {
        run,
        ck,
        splits,
        mut backend,
    } = a.source.open()?;
    let image_shape = parse_image_shape(&a.image_shape, ck.arch.input_dim)?;
    let out = a.out.unwrap_or_else(|| run.figure());
    write_figure(
        backend.as_mut(),
        &splits,
        &ck.arch,
        a.seed.unwrap_or(ck.config.seed),
        image_shape,
        &out,
        &run.checkpoint(),
    )?;
    say!("wrote {}", out.display());
    Ok(())
}
