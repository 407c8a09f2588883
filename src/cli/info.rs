use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// The whole record as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let m = super::load_model(&a.model)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"config": m.config, "training": m.training})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let n = &m.config.network;
    let params: usize = m
        .net
        .layers
        .iter()
        .map(|l| l.w.len() + 3 * l.c_out)
        .sum::<usize>()
        + m.net.readout.w.len()
        + 2 * m.net.readout.n_classes;
    println!("labels:     {}", m.labels().join(" "));
    println!(
        "features:   {} log-mel bands {}-{} Hz, {} ms window, {} ms hop",
        m.config.features.n_mels,
        m.config.features.fmin,
        m.config.features.fmax,
        1000 * m.config.features.win_length as u32 / m.config.features.sample_rate,
        1000 * m.config.features.hop_length as u32 / m.config.features.sample_rate
    );
    println!("encoder:    {:?}", m.config.encoder);
    println!(
        "network:    LIF channels {:?}, kernel {} frames, dilations {:?} (receptive field {} ms), {:?} reset, {:?} surrogate",
        n.channels,
        n.kernel,
        n.dilations,
        n.receptive_field() * 10,
        n.reset,
        n.surrogate
    );
    println!("parameters: {params}");
    for key in [
        "test_accuracy",
        "test_firing_rate_hz",
        "best_epoch",
        "wall_time_s",
        "date",
    ] {
        if let Some(v) = m.training.get(key) {
            println!("{key:<12}{v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
