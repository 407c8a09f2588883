use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use spikeword::Model;

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
    print_architecture(&m);
    println!("parameters: {}", parameter_count(&m));
    print_replay(&m);
    print_training(&m.training);
    Ok(ExitCode::SUCCESS)
}

/// The clips `retrain` replays when no data folder is given.
fn print_replay(m: &Model) {
    use spikeword::replay::Part;
    match &m.replay {
        None => println!(
            "replay:     none stored (retrain needs --replay DIR to protect the old words)"
        ),
        Some(r) => println!(
            "replay:     {} clips of the training and {} of the validation speakers, {} + {} noise recordings ({} kB, {} Hz)",
            r.count(Part::Train),
            r.count(Part::Validation),
            r.count(Part::Noise),
            r.count(Part::NoiseValidation),
            r.bytes() / 1000,
            r.rate
        ),
    }
}

/// Weights plus per-channel constants of every member network.
fn parameter_count(m: &Model) -> usize {
    m.net
        .members
        .iter()
        .map(|net| {
            net.layers
                .iter()
                .map(|l| l.w.len() + 3 * l.c_out)
                .sum::<usize>()
                + net.readout.w.len()
                + 2 * net.readout.n_classes
        })
        .sum()
}

/// Labels, features, encoder, network and decision rule.
fn print_architecture(m: &Model) {
    let n = &m.config.network;
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
    println!(
        "decision:   mean class scores over the last {} frames of a 1 s clip (the detector's smoothing window)",
        m.decision_window()
    );
    if m.net.len() > 1 {
        println!(
            "ensemble:   {} networks trained apart, voting by their mean class scores{}",
            m.net.len(),
            shape_groups(m)
        );
    }
    print_operating_points(m);
}

/// ` (N with channels [..], M with ..)` when the members differ in shape, else nothing;
/// each group's dilations too when those differ.
fn shape_groups(m: &Model) -> String {
    type Shape<'a> = (&'a [usize], &'a [usize]);
    let mut groups: Vec<(Shape, usize)> = Vec::new();
    for net in &m.net.members {
        let shape = (
            net.config.channels.as_slice(),
            net.config.dilations.as_slice(),
        );
        match groups.iter_mut().find(|(g, _)| *g == shape) {
            Some((_, n)) => *n += 1,
            None => groups.push((shape, 1)),
        }
    }
    if groups.len() < 2 {
        return String::new();
    }
    let same_delays = groups.iter().all(|((_, d), _)| *d == groups[0].0.1);
    let parts: Vec<String> = groups
        .iter()
        .map(|((c, d), n)| {
            if same_delays {
                format!("{n} with channels {c:?}")
            } else {
                format!("{n} with channels {c:?} and dilations {d:?}")
            }
        })
        .collect();
    format!(" ({})", parts.join(", "))
}

/// The calibrated detection thresholds, one line per false-alarm rate.
fn print_operating_points(m: &Model) {
    for p in &m.config.operating_points {
        let first = p.thresholds.values().next().copied();
        let t: Vec<String> = match first {
            Some(f) if p.thresholds.values().all(|t| *t == f) => vec![format!("every word {f:.2}")],
            _ => p
                .thresholds
                .iter()
                .map(|(w, t)| format!("{w} {t:.2}"))
                .collect(),
        };
        let sustain = match p.sustain_frames {
            0 | 1 => String::new(),
            n => format!(", held {:.2} s", n as f32 / m.config.features.frame_rate()),
        };
        println!(
            "detection:  {:>4} false alarms/h (validation: {:.1} % found, {:.1}/h): {}{sustain}",
            p.false_alarms_per_hour,
            100.0 * p.measured_hit_rate,
            p.measured_false_alarms_per_hour,
            t.join(", ")
        );
    }
}

/// What the training record holds: test result, date and length, retrained words.
fn print_training(t: &serde_json::Value) {
    let num = |k: &str| t.get(k).and_then(|v| v.as_f64());
    if let Some(acc) = num("test_accuracy") {
        println!(
            "test:       {:.1} % on {} held-out clips, {:.2} Hz mean firing rate",
            100.0 * acc,
            num("test_clips").unwrap_or(0.0),
            num("test_firing_rate_hz").unwrap_or(0.0)
        );
    }
    if let Some(date) = t.get("date").and_then(|v| v.as_str()) {
        let mut line = format!("trained:    {date}");
        if let (Some(e), Some(b)) = (num("epochs"), num("best_epoch")) {
            line += &format!(", {e} epochs (best {b})");
        }
        if let Some(s) = num("wall_time_s") {
            line += &format!(", {:.0} min", s / 60.0);
        }
        println!("{line}");
    }
    if let Some(q) = t.get("quantized") {
        println!(
            "quantized:  {}-bit synaptic weights, one scale per neuron ({:.2} % RMS change)",
            q["weight_bits"],
            100.0 * q["relative_rms_change"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(r) = t.get("retrain") {
        println!(
            "retrained:  new words {}",
            r["new_words"]
                .as_array()
                .map(|v| v
                    .iter()
                    .filter_map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        );
    }
}
