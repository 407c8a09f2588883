use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use spikeword::config::FeatureConfig;
use spikeword::features::{MelFrame, log_mel, log_mel_with};
use spikeword::load_wav;

#[derive(clap::Args)]
pub struct Args {
    /// WAV file, or `-` for a WAV stream on standard input.
    file: PathBuf,
    /// Output: `.npy` (float32, frames × bands) or `.csv`.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let cfg = FeatureConfig::default();
    let x = super::recording::load(&a.file, cfg.sample_rate)?;
    super::recording::check_long_enough(&a.file, x.len(), &cfg)?;
    let m = log_mel(&x, &cfg);
    let ext = a
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "npy" => spikeword::util::atomic_write(&a.out, &npy(&m.data, m.n_frames(), m.n_mels))?,
        "csv" => {
            let mut s = String::new();
            for f in m.data.chunks_exact(m.n_mels) {
                let row: Vec<String> = f.iter().map(|v| format!("{v}")).collect();
                s.push_str(&row.join(","));
                s.push('\n');
            }
            spikeword::util::atomic_write(&a.out, s.as_bytes())?;
        }
        _ => anyhow::bail!("--out must end in .npy or .csv"),
    }
    println!(
        "{} frames x {} bands -> {}",
        m.n_frames(),
        m.n_mels,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// NumPy `.npy` v1.0, little-endian float32, C order.
fn npy(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// WAV files to decode and turn into log-mel.
    files: Vec<PathBuf>,
}

/// Decoding + log-mel throughput on real files, one JSON line (used by
/// scripts/bench_features_vs_librosa.py for the side-by-side ratio).
pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let cfg = FeatureConfig::default();
    let mut mf = MelFrame::new(&cfg);
    let run = |mf: &mut MelFrame, files: &[PathBuf]| -> Result<usize> {
        let mut frames = 0;
        for f in files {
            let x =
                load_wav(Path::new(f), cfg.sample_rate).with_context(|| f.display().to_string())?;
            frames += log_mel_with(mf, &x).n_frames();
        }
        Ok(frames)
    };
    run(&mut mf, &a.files)?; // warm the page cache and the FFT plan
    let t = Instant::now();
    let frames = run(&mut mf, &a.files)?;
    let secs = t.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({"files": a.files.len(), "frames": frames, "seconds": secs, "frames_per_second": frames as f64 / secs})
    )?;
    Ok(ExitCode::SUCCESS)
}
