use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use spikeword::data::Split;
use spikeword::eval::{EvalReport, evaluate, evaluate_integer};
use spikeword::snn::FixedSpec;
use spikeword::snn::quantize::BITS;

#[derive(clap::Args)]
pub struct Args {
    /// Model to quantize (default: the bundled one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// New model file (never the input).
    #[arg(long)]
    out: PathBuf,
    /// Bits per synaptic weight, sign included (2–16).
    #[arg(long, default_value_t = 8, value_parser = bits)]
    bits: u32,
    /// Speech Commands folder: measure the model before and after on --split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Part of the model's speaker split to measure on with --data.
    #[arg(long, value_enum, default_value_t = Split::Validation)]
    split: Split,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let (model, in_path) = super::load_base_model(&a.model, &a.out)?;
    let mut q = model.clone();
    let stats = q.quantize(a.bits);
    println!(
        "quantized {} synaptic weights of {} network{} to {} bits (one scale per neuron): {:.2} % RMS change",
        stats.weights,
        q.net.len(),
        if q.net.len() == 1 { "" } else { "s" },
        a.bits,
        100.0 * stats.relative_rms_error()
    );
    if let Some(dir) = &a.data {
        let (clips, _) = super::eval::labelled_clips(&model, dir, Some(a.split), None, &[])?;
        let (before, _) = evaluate(&model, &clips);
        // The integer engine's run measures the float one on the same weights too.
        let engine = q.integer_engine(&FixedSpec::default())?;
        let (integer, after) = evaluate_integer(&q, &engine, &clips);
        println!("{}", compare(&before, &after, a.split, a.bits));
        println!("{}", integer_line(&integer, a.split));
    }
    q.save(&a.out)?;
    eprintln!(
        "saved {} ({}; the input {})",
        a.out.display(),
        file_size(&a.out),
        file_size(&in_path)
    );
    if !q.config.operating_points.is_empty() {
        // Rounding moves the scores a little; a few near-misses sit at each threshold.
        eprintln!(
            "its detection thresholds are those of the input: `spikeword calibrate --model {0} --out {0}` chooses them anew",
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--bits`: a whole number within `snn::quantize::BITS`.
fn bits(s: &str) -> Result<u32, String> {
    super::values::whole_within(s, &BITS)
}

fn file_size(p: &std::path::Path) -> String {
    match std::fs::metadata(p).map(|m| m.len() as f64) {
        Ok(b) if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        Ok(b) => format!("{:.1} kB", b / 1e3),
        Err(_) => "size unknown".into(),
    }
}

fn compare(before: &EvalReport, after: &EvalReport, split: Split, bits: u32) -> String {
    format!(
        "{}\n{}",
        line(split, "as given:", before),
        line(split, &format!("{bits}-bit weights:"), after)
    )
}

/// One report as a line: `validation clips, WHAT  88.92 % (353/397, …), 4.56 Hz`.
fn line(split: Split, what: &str, r: &EvalReport) -> String {
    let correct = (r.accuracy * r.n as f64).round() as usize;
    let acc = spikeword::eval::accuracy_with_interval(correct, r.n);
    let split = format!("{split:?}").to_lowercase();
    format!(
        "{split} clips, {what:<15} {}, {:.2} Hz",
        acc.trim_start(),
        r.firing_rate_hz
    )
}

/// The integer engine's line (`snn::fixed`, default formats), with its agreement.
fn integer_line(r: &EvalReport, split: Split) -> String {
    let same = r.integer.as_ref().map_or(0.0, |i| i.same_decisions);
    format!(
        "{}; the same label as in float on {:.1} %",
        line(split, "in integers:", r),
        100.0 * same
    )
}
