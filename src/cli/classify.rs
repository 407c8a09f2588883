use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::ValueEnum;
use serde_json::json;

use spikeword::audio::fit_length;
use spikeword::eval::parallel_map;
use spikeword::features::{MelFrame, with_mel_frame};
use spikeword::train::DeviceKind;
use spikeword::{Model, load_wav};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// WAV files, folders (searched recursively), or `-` to read paths from stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long)]
    model: Option<PathBuf>,
    /// Labels to show per file.
    #[arg(long, default_value_t = 1)]
    top: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Shorthand for `--format json` (one object per line).
    #[arg(long)]
    json: bool,
    /// cpu: the event-driven engine on all cores; gpu: batched on burn's wgpu backend.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

/// Expands folders recursively (sorted) and `-` (paths on stdin).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            for line in std::io::stdin().lock().lines() {
                let l = line?;
                if !l.trim().is_empty() {
                    out.push(PathBuf::from(l.trim()));
                }
            }
        } else if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
            out.push(p);
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    let files = expand(&a.paths)?;
    let format = if a.json { Format::Json } else { a.format };
    let t0 = Instant::now();
    let rate = model.config.features.sample_rate;
    let results: Vec<Result<Vec<f32>, String>> = match a.device {
        DeviceKind::Cpu => parallel_map(&files, |f| {
            let x = load_wav(f, rate).map_err(|e| e.to_string())?;
            // Clips are classified whole; shorter than 1 s is padded, as in training.
            let x = if x.len() < rate as usize {
                fit_length(&x, rate as usize)
            } else {
                x
            };
            Ok(with_mel_frame(&model.config.features, |mf| {
                model.classify(mf, &x).probs
            }))
        }),
        DeviceKind::Gpu => classify_burn(&model, &files, a.device)?,
    };
    let secs = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let labels = model.labels();
    let mut failed = 0;
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
            Ok(p) => {
                let mut idx: Vec<usize> = (0..p.len()).collect();
                idx.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
                let top: Vec<(String, f32)> = idx
                    .iter()
                    .take(a.top.max(1))
                    .map(|&i| (labels[i].clone(), p[i]))
                    .collect();
                match format {
                    Format::Json => {
                        let t: Vec<_> = top
                            .iter()
                            .map(|(l, s)| json!({"label": l, "score": s}))
                            .collect();
                        writeln!(
                            out,
                            "{}",
                            json!({"file": name, "label": top[0].0, "score": top[0].1, "top": t})
                        )?
                    }
                    Format::Csv => {
                        for (k, (l, s)) in top.iter().enumerate() {
                            writeln!(out, "{name},{},{l},{s:.4}", k + 1)?;
                        }
                    }
                    Format::Table => {
                        let cols: Vec<String> =
                            top.iter().map(|(l, s)| format!("{l:<10} {s:.3}")).collect();
                        writeln!(out, "{name}  {}", cols.join("  "))?;
                    }
                }
            }
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

/// Batched inference with the burn graph (GPU path): 1 s clips, 256 per batch.
fn classify_burn(
    model: &Model,
    files: &[PathBuf],
    device: DeviceKind,
) -> Result<Vec<Result<Vec<f32>, String>>> {
    use burn::tensor::{Tensor, TensorData, activation::softmax};
    let dev = spikeword::train::trainer::burn_device(device)?;
    let nets: Vec<_> = model
        .net
        .members
        .iter()
        .map(|n| spikeword::train::net::TrainNet::from_network(n, &dev))
        .collect();
    let rate = model.config.features.sample_rate as usize;
    let inputs: Vec<Result<Vec<f32>, String>> = parallel_map(files, |f| {
        let x = load_wav(f, rate as u32).map_err(|e| e.to_string())?;
        let mut mf = MelFrame::new(&model.config.features);
        Ok(model.encode(&mut mf, &fit_length(&x, rate)).0)
    });
    let c = model
        .config
        .encoder
        .out_channels(model.config.features.n_mels);
    let ok: Vec<usize> = (0..inputs.len()).filter(|&i| inputs[i].is_ok()).collect();
    let mut probs: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    for batch in ok.chunks(256) {
        let t = inputs[batch[0]].as_ref().map(|v| v.len() / c).unwrap_or(0);
        let mut xs = Vec::with_capacity(batch.len() * c * t);
        for &i in batch {
            let v = inputs[i].as_ref().expect("ok");
            // frames × channels → channels × frames
            for ci in 0..c {
                xs.extend((0..t).map(|ti| v[ti * c + ci]));
            }
        }
        let x: Tensor<3> = Tensor::from_data(TensorData::new(xs, [batch.len(), c, t]), &dev);
        // Ensemble members vote by their mean logits, as on the CPU.
        let logits = nets
            .iter()
            .map(|n| n.forward(x.clone()).logits)
            .reduce(|a, b| a + b)
            .expect("a model has a network")
            .div_scalar(nets.len() as f32);
        let p = softmax(logits, 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (k, &i) in batch.iter().enumerate() {
            probs[i] = Some(p[k * model.n_labels()..(k + 1) * model.n_labels()].to_vec());
        }
    }
    Ok(inputs
        .into_iter()
        .zip(probs)
        .map(|(r, p)| r.map(|_| p.expect("classified")))
        .collect())
}
