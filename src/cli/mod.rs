//! Subcommands, one module each.

mod bench_detect;
mod classify;
mod data;
mod detect;
mod ensemble;
mod eval;
mod features;
mod info;
mod inspect;
mod listen;
mod quantize;
mod record;
mod recording;
mod retrain;
mod train;
mod values;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use spikeword::Model;

#[derive(Parser)]
#[command(
    name = "spikeword",
    version,
    about = "Keyword spotting with a spiking neural network"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Picture of a WAV: waveform, log-mel spectrogram and input spike raster.
    Inspect(inspect::Args),
    /// Log-mel matrix of a WAV (frames × bands) as .npy or .csv.
    Features(features::Args),
    /// Decoding + log-mel throughput on files, as one JSON line (benchmark helper).
    #[command(hide = true)]
    FeaturesBench(features::BenchArgs),
    /// Classify clips: files, folders (recursive) or `-` for paths on stdin.
    Classify(classify::Args),
    /// Find words with timestamps in a recording of any length.
    Detect(detect::Args),
    /// Live word recognition from the microphone (or a file fed as if live).
    Listen(listen::Args),
    /// Record examples of a word (microphone, or cut from a long recording) for `retrain`.
    Record(record::Args),
    /// Teach new words from a few examples, keeping the old ones.
    Retrain(retrain::Args),
    /// Train the SNN on a Speech Commands folder (surrogate gradients, BPTT).
    Train(Box<train::Args>),
    /// Training throughput on random input, one JSON line (benchmark helper).
    #[command(hide = true)]
    TrainBench(train::BenchArgs),
    /// Command words found against false alarms per hour in running speech, over a
    /// threshold sweep (streams built from held-out speakers and synthetic sentences).
    BenchDetect(bench_detect::Args),
    /// Per-word detection thresholds for chosen false-alarm rates, stored in the model.
    Calibrate(bench_detect::CalibrateArgs),
    /// Synaptic weights on a signed integer grid (8 bits by default), as neuromorphic
    /// chips hold them.
    Quantize(quantize::Args),
    /// Combine trained models into one ensemble file (members vote by mean scores).
    Ensemble(ensemble::Args),
    /// Accuracy, confusion and firing rates of a model on a labelled folder.
    Eval(eval::Args),
    /// What a model file holds: labels, architecture, features, training record.
    Info(info::Args),
    /// Data tools: synthetic speech (TTS) and the official archive download.
    Data(data::Args),
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Command::Inspect(a) => inspect::run(a),
        Command::Features(a) => features::run(a),
        Command::FeaturesBench(a) => features::bench(a),
        Command::Classify(a) => classify::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Listen(a) => listen::run(a),
        Command::Record(a) => record::run(a),
        Command::Retrain(a) => retrain::run(a),
        Command::Train(a) => train::run(*a),
        Command::TrainBench(a) => train::bench(a),
        Command::BenchDetect(a) => bench_detect::run(a),
        Command::Calibrate(a) => bench_detect::calibrate(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Ensemble(a) => ensemble::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Info(a) => info::run(a),
        Command::Data(a) => data::run(a),
    }
}

/// Loads `--model` or the bundled default.
pub fn load_model(path: &Option<PathBuf>) -> Result<Model> {
    let p = path
        .clone()
        .unwrap_or_else(spikeword::model::default_model_path);
    Ok(Model::load(&p)?)
}

/// The integer engine (default formats) when `--integer` asked for one; a model whose
/// weights are not on a grid is refused with what to do.
pub fn integer_engine(
    model: &Model,
    integer: bool,
) -> Result<Option<spikeword::snn::FixedEnsemble>> {
    Ok(match integer {
        true => Some(model.integer_engine(&spikeword::snn::FixedSpec::default())?),
        false => None,
    })
}

/// Loads the model a new file is made from (`--model`, or the bundled one) and refuses an
/// `--out` that would replace it; returns the model and where it came from.
pub fn load_base_model(model: &Option<PathBuf>, out: &std::path::Path) -> Result<(Model, PathBuf)> {
    let path = model
        .clone()
        .unwrap_or_else(spikeword::model::default_model_path);
    let m = Model::load(&path)?;
    spikeword::train::retrain::check_out_path(&path, out)?;
    Ok((m, path))
}

/// The microphone through the live path (feature `mic`).
#[cfg(feature = "mic")]
pub fn open_mic(device: Option<&str>, rate: u32) -> Result<spikeword::audio::live::LiveSource> {
    Ok(spikeword::audio::mic::open(device, rate)?)
}

#[cfg(not(feature = "mic"))]
pub fn open_mic(_: Option<&str>, _: u32) -> Result<spikeword::audio::live::LiveSource> {
    anyhow::bail!(
        "this build has no microphone support: rebuild with `--features mic` (needs libasound2-dev), or use --input FILE"
    )
}
