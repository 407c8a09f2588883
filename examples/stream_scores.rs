//! The raw class scores of `bench-detect`'s two streams, frame by frame, for studies of
//! detection rules outside Rust (`scripts/detection_rules.py`): the same streams (split,
//! seed, minutes, the default TTS engines and voices) run once through the streaming engine.
//!
//!     SPIKEWORD_DATA=DIR cargo run --release --example stream_scores -- MODEL test|validation SEED MINUTES OUT_DIR
//!
//! Writes, per stream (`kw`: command words in noise; `nc`: no command word), little-endian
//! f32 `NAME_scores.f32` (`[frame][label]`) and `NAME_energy.f32` (`[frame]`), and
//! `NAME.json`: the labels, the model's decision window, the stream's length in hours and
//! where its words (`words`) and other speech (`said`) lie.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spikeword::Model;
use spikeword::data::{Dataset, Split};
use spikeword::eval::model_split_rule;
use spikeword::stream_bench::{Material, SENTENCES, joined_streams, run_stream};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, split, seed, minutes, out] = args.as_slice() else {
        bail!("usage: stream_scores MODEL test|validation SEED MINUTES OUT_DIR");
    };
    // `MODEL@K`: network K of an ensemble alone (its scores, on the same streams).
    let model = Model::load_spec(model)?;
    let split = match split.as_str() {
        "test" => Split::Test,
        "validation" => Split::Validation,
        s => bail!("split '{s}': test or validation (held-out speakers)"),
    };
    let seed: u64 = seed.parse().context("SEED")?;
    let minutes: f64 = minutes.parse().context("MINUTES")?;
    let out = PathBuf::from(out);
    let data =
        std::env::var("SPIKEWORD_DATA").context("SPIKEWORD_DATA: the Speech Commands folder")?;
    let ds = Dataset::scan(Path::new(&data), &model_split_rule(&model)?)?;
    let engines = ["espeak", "flite", "festival"].map(String::from);
    let (m, missing) = Material::load(&model, &ds, split, &SENTENCES, (&engines, 2), seed)?;
    if !missing.is_empty() {
        eprintln!("warning: no {}", missing.join(", "));
    }
    std::fs::create_dir_all(&out)?;
    let rate = model.config.features.sample_rate;
    let (keyword, other) = joined_streams(&m, minutes, rate, &[seed]).context("no seed")?;
    for (name, stream) in [("kw", keyword), ("nc", other)] {
        let frames = run_stream(&model, &stream, None);
        write_f32(&out.join(format!("{name}_scores.f32")), frames.scores())?;
        write_f32(&out.join(format!("{name}_energy.f32")), frames.energy())?;
        let meta = serde_json::json!({"labels": model.labels(), "window": model.decision_window(),
            "hours": stream.hours(), "words": stream.words, "said": stream.said});
        std::fs::write(out.join(format!("{name}.json")), meta.to_string())?;
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn write_f32(path: &Path, values: &[f32]) -> Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    w.flush()?;
    Ok(())
}
