use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::ValueEnum;
use serde_json::json;

use spikeword::Model;
use spikeword::audio::fit_length;
use spikeword::batch::{DeviceKind, classify_clips};
use spikeword::features::with_mel_frame;
use spikeword::snn::FixedEnsemble;
use spikeword::util::parallel_map;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// A file name as one CSV field (quoted where it holds a comma, quote or line break).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// WAV files, folders (searched recursively), or `-`: a WAV stream on standard input,
    /// or paths there, one per line.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long)]
    model: Option<PathBuf>,
    /// Labels to show per file.
    #[arg(long, default_value_t = 1, value_parser = super::values::count)]
    top: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Shorthand for `--format json` (one object per line).
    #[arg(long)]
    json: bool,
    /// cpu: the event-driven engine on all cores; gpu: batched on burn's wgpu backend.
    /// Both decide each file on one 1 s clip: shorter files are centred between zeros,
    /// longer ones cropped around their centre (as in training); `detect` finds words in
    /// longer recordings.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Run the networks in integer arithmetic, as a neuromorphic chip would (on the CPU;
    /// the model's weights must be on a grid: `spikeword quantize`).
    #[arg(long)]
    integer: bool,
}

/// Expands folders recursively (sorted) and `-` (paths on stdin, or the WAV stream
/// there, which stays `-`).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !super::recording::is_stdin(p) {
            out.extend(super::recording::expand_folders(std::slice::from_ref(p))?);
            continue;
        }
        let mut stdin = std::io::stdin().lock();
        // Peeked, not consumed: the recording is read from the start later.
        if stdin.fill_buf()?.starts_with(b"RIFF") {
            out.push(p.clone());
            continue;
        }
        for line in stdin.lines() {
            let l = line?;
            if !l.trim().is_empty() {
                out.push(PathBuf::from(l.trim()));
            }
        }
    }
    Ok(out)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    if a.integer && a.device != DeviceKind::Cpu {
        anyhow::bail!("--integer runs on the CPU: leave out --device");
    }
    let integer = super::integer_engine(&model, a.integer)?;
    let files = expand(&a.paths)?;
    let format = if a.json { Format::Json } else { a.format };
    let t0 = Instant::now();
    let results = classify_files(&model, &files, a.device, integer.as_ref())?;
    let secs = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let labels = model.labels();
    let mut failed = 0;
    // The labels in one column.
    let width = files
        .iter()
        .map(|f| f.display().to_string().chars().count())
        .max()
        .unwrap_or(0);
    if format == Format::Csv {
        writeln!(out, "file,rank,label,score")?;
    }
    for (f, r) in files.iter().zip(&results) {
        let name = f.display().to_string();
        match r {
            Err(e) => {
                failed += 1;
                match format {
                    Format::Json => writeln!(out, "{}", json!({"file": name, "error": e}))?,
                    _ => eprintln!("error: {name}: {e}"),
                }
            }
            Ok(p) => print_top(
                &mut out,
                format,
                &name,
                width,
                &top_labels(labels, p, a.top),
            )?,
        }
    }
    out.flush()?;
    eprintln!(
        "{} files, {} failed, {:.2} s, {:.0} clips/s",
        files.len(),
        failed,
        secs,
        (files.len() - failed) as f64 / secs.max(1e-9)
    );
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `top` most probable labels of one clip, best first (at least one).
fn top_labels(labels: &[String], p: &[f32], top: usize) -> Vec<(String, f32)> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    idx.iter()
        .take(top.max(1))
        .map(|&i| (labels[i].clone(), p[i]))
        .collect()
}

/// One clip's line (CSV: one row per rank); `width` aligns the table's labels.
fn print_top(
    out: &mut impl Write,
    format: Format,
    name: &str,
    width: usize,
    top: &[(String, f32)],
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let t: Vec<_> = top
                .iter()
                .map(|(l, s)| json!({"label": l, "score": s}))
                .collect();
            let line = json!({"file": name, "label": top[0].0, "score": top[0].1, "top": t});
            writeln!(out, "{line}")
        }
        Format::Csv => {
            for (k, (l, s)) in top.iter().enumerate() {
                writeln!(out, "{},{},{l},{s:.4}", csv_field(name), k + 1)?;
            }
            Ok(())
        }
        Format::Table => {
            let cols: Vec<String> = top.iter().map(|(l, s)| format!("{l:<10} {s:.3}")).collect();
            writeln!(out, "{name:<width$}  {}", cols.join("  "))
        }
    }
}

/// Class probabilities per file, or the reason it could not be read. Every file becomes
/// one 1 s clip (`fit_length`: centred, padded or cropped), on either device, or on the
/// CPU in integers with `integer`.
fn classify_files(
    model: &Model,
    files: &[PathBuf],
    device: DeviceKind,
    integer: Option<&FixedEnsemble>,
) -> Result<Vec<Result<Vec<f32>, String>>> {
    let rate = model.config.features.sample_rate;
    let clip = |f: &PathBuf| -> Result<Vec<f32>, String> {
        let x = super::recording::read(f, rate).map_err(|e| e.to_string())?;
        // Padding would make an empty file "_silence_": an empty take is a failed one.
        if let Some(why) = super::recording::too_short(x.len(), &model.config.features) {
            return Err(why);
        }
        Ok(fit_length(&x, rate as usize))
    };
    if device == DeviceKind::Cpu {
        // One pass per file: decoded, decided and dropped (no clip kept in memory).
        return Ok(parallel_map(files, |f| {
            let x = clip(f)?;
            Ok(with_mel_frame(&model.config.features, |mf| match integer {
                Some(fixed) => model.classify_fixed(fixed, mf, &x).0.probs,
                None => model.classify(mf, &x).probs,
            }))
        }));
    }
    let clips: Vec<Result<Vec<f32>, String>> = parallel_map(files, clip);
    let ok: Vec<Vec<f32>> = clips
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let mut probs = classify_clips(model, &ok, device)?.into_iter();
    Ok(clips
        .into_iter()
        .map(|c| c.map(|_| probs.next().expect("one result per clip")))
        .collect())
}
