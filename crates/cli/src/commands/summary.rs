//! `dae summary`: Keras-style tables of the autoencoder and its encoder.

use crate::args::parse_layers;
use anyhow::Result;
use clap::Args;
use dae_model::{format_summary, Architecture, SummaryTable};

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Encoder widths; the decoder mirrors them
    #[arg(long, value_parser = parse_layers, default_value = "128,64,32")]
    pub layers: crate::args::Widths,
    /// Values per input sample
    #[arg(long, default_value_t = 784, value_parser = crate::args::positive)]
    pub input_dim: usize,
}

pub fn run(a: SummaryArgs) -> Result<()> {
    let arch = Architecture::new(a.input_dim, a.layers.0)?;
    say!("{}", format_summary(&SummaryTable::autoencoder(&arch)));
    say!("{}", format_summary(&SummaryTable::encoder(&arch)));
    Ok(())
}
