//! Spike counts of every spiking layer of every ensemble member, in time bins, for a list
//! of WAV files: the representation the readout sees, for probes outside Rust
//! (`scripts/fsdd_baselines.py`).
//!
//!     ls *.wav | cargo run --release --example spike_counts -- MODEL OUT.f32 [BINS]
//!
//! Writes little-endian f32, per file `[member][layer][bin][channel]`, files in input
//! order; each clip is centred in 1 s as `classify` does.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use spikeword::audio::fit_length;
use spikeword::features::with_mel_frame;
use spikeword::{Mode, Model, load_wav};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, out, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: spike_counts MODEL OUT.f32 [BINS] < paths");
    };
    let model = Model::load(Path::new(model))?;
    let bins: usize = rest.first().map_or(Ok(1), |b| b.parse())?;
    let rate = model.config.features.sample_rate;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for line in std::io::stdin().lock().lines() {
        let path = PathBuf::from(line?);
        let x = load_wav(&path, rate).with_context(|| path.display().to_string())?;
        let x = fit_length(&x, rate as usize);
        let (input, _) = with_mel_frame(&model.config.features, |mf| model.encode(mf, &x));
        for net in &model.net.members {
            let c_in = net.layers[0].c_in;
            let frames = input.len() / c_in;
            let widths: Vec<usize> = net.layers.iter().map(|l| l.c_out).collect();
            let mut counts: Vec<Vec<f32>> = widths.iter().map(|c| vec![0.0; bins * c]).collect();
            let mut st = net.new_state();
            for (t, frame) in input.chunks_exact(c_in).enumerate() {
                net.step(&mut st, frame, Mode::Event);
                let b = t * bins / frames;
                for (l, (cnt, &c)) in counts.iter_mut().zip(&widths).enumerate() {
                    for (k, s) in st.layer_output(l).iter().enumerate() {
                        cnt[b * c + k] += s;
                    }
                }
            }
            for v in counts.iter().flatten() {
                w.write_all(&v.to_le_bytes())?;
            }
        }
    }
    w.flush()?;
    Ok(())
}
