use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use spikeword::config::EncoderConfig;
use spikeword::encoding;
use spikeword::features::log_mel;
use spikeword::plot::{Figure, figure_png};

#[derive(clap::Args)]
pub struct Args {
    /// WAV file (any rate, any channels), or `-` for a WAV stream on standard input.
    file: PathBuf,
    /// Output picture.
    #[arg(long, default_value = "inspect.png")]
    png: PathBuf,
    /// Model whose features, normalisation and encoder to use (default: the bundled one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Encoder for the raster: delta (ON/OFF spikes) or the model's.
    #[arg(long, default_value_t = 0.5, value_parser = super::values::positive)]
    delta_threshold: f32,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    let fcfg = model.config.features.clone();
    let samples = super::recording::load(&a.file, fcfg.sample_rate)?;
    super::recording::check_long_enough(&a.file, samples.len(), &fcfg)?;
    let mel = log_mel(&samples, &fcfg);
    let mut x = mel.data.clone();
    let norm = model.normalizer();
    x.chunks_exact_mut(mel.n_mels).for_each(|f| norm.apply(f));
    // Current injection has no input spikes: show the delta code of the same frames.
    let enc = match &model.config.encoder {
        e @ (EncoderConfig::Delta { .. } | EncoderConfig::Rate { .. }) => e.clone(),
        _ => EncoderConfig::Delta {
            threshold: a.delta_threshold,
        },
    };
    let (raster, count) = encoding::encode_clip(&enc, &x, mel.n_mels);
    let channels = enc.out_channels(mel.n_mels);
    let secs = samples.len() as f32 / fcfg.sample_rate as f32;
    let label = match enc {
        EncoderConfig::Delta { threshold } => format!(
            "input spikes: send-on-delta ON/OFF, threshold {threshold} σ ({count} spikes, {:.0}/s)",
            count as f32 / secs
        ),
        _ => format!("input spikes: {enc:?} ({count} spikes)"),
    };
    // The picture's title names the file, not its folders.
    let name = super::recording::name(&a.file);
    let name = std::path::Path::new(&name)
        .file_name()
        .map_or(name.clone(), |s| s.to_string_lossy().to_string());
    figure_png(
        &Figure {
            title: format!(
                "{name}: {:.2} s, {} frames × {} mel bands",
                secs,
                mel.n_frames(),
                mel.n_mels
            ),
            samples: &samples,
            sample_rate: fcfg.sample_rate,
            logmel: &mel.data,
            n_mels: mel.n_mels,
            frame_rate: fcfg.frame_rate(),
            raster: &raster,
            raster_channels: channels,
            raster_label: label,
            marks: Vec::new(),
        },
        &a.png,
    )?;
    println!(
        "{}: {:.2} s, {} frames, {} input spikes ({:.1} per band per second) -> {}",
        super::recording::name(&a.file),
        secs,
        mel.n_frames(),
        count,
        count as f32 / (secs * channels as f32),
        a.png.display()
    );
    Ok(ExitCode::SUCCESS)
}
