//! `dae`: train, inspect and benchmark dense autoencoders on the CPU or GPU.

#[macro_use]
mod console;
mod args;
mod canvas;
mod chart;
mod commands;
mod device;
mod fetch;
mod figure;
mod out_guard;
mod outputs;
mod progress;
mod run_dir;
mod run_lock;
mod signals;
mod training;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dae",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DAE_GIT_COMMIT"), ")"),
    about = "Dense deep autoencoders on our own CUDA kernels, with an exact CPU path"
)]
struct Cli {
    /// CPU threads (the CPU path's share of a step per thread; its bits
    /// follow this count) [default: every core, or RAYON_NUM_THREADS]
    #[arg(long, global = true, value_parser = args::thread_count)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an autoencoder (defaults: the lab's deep AE on Fashion-MNIST, 20 epochs, batch 256)
    Train(commands::train::TrainArgs),
    /// Print Keras-style summaries of the autoencoder and its encoder
    Summary(commands::summary::SummaryArgs),
    /// Write the codes (and labels) of a split to .npy using a trained run's encoder
    Encode(commands::encode::EncodeArgs),
    /// Report a trained run's reconstruction loss on a split, overall and per class
    Eval(commands::eval::EvalArgs),
    /// Draw originals, codes and reconstructions of random test images from a trained run
    Figure(commands::figure::FigureArgs),
    /// Train several architectures with the same data, seed and schedule, side by side
    Compare(commands::compare::CompareArgs),
    /// Steps and time to a target loss per batch size, the critical batch and the gradient noise scale
    Scan(commands::scan::ScanArgs),
    /// K-fold cross-validation on the training set
    Cv(commands::cv::CvArgs),
    /// Get datasets (MNIST digits) and make high-dimensional ones (upscaled images)
    Data(commands::data::DataCmd),
    /// GPU kernel regression suite: every kernel and a whole step/epoch against the CPU float64 reference
    Check(commands::check::CheckArgs),
    /// Measure training throughput (a benchmark, not a test)
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The command runs on a worker of its own pool, so the CPU step's
    // broadcast (`HostDevice::replay`) has the calling thread take its
    // share instead of sleeping while the others work (one wake-up fewer
    // per step). 0 threads: rayon's default (every core, RAYON_NUM_THREADS).
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(cli.threads.unwrap_or(0))
        // The main thread's stack, which the commands ran on before.
        .stack_size(8 << 20)
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            say_err!("error: --threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pool.install(|| run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say_err!("error: {e:#}");
            // 128 + SIGINT, as a shell reports a program a signal ended.
            if e.downcast_ref::<dae_model::Error>()
                .is_some_and(dae_model::Error::is_interrupted)
            {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train(a) => commands::train::run(a),
        Command::Summary(a) => commands::summary::run(a),
        Command::Encode(a) => commands::encode::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Figure(a) => commands::figure::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Scan(a) => commands::scan::run(a),
        Command::Cv(a) => commands::cv::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Bench(a) => commands::bench::run(a),
    }
}
