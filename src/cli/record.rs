use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use spikeword::audio::live::{Recv, file_feed};
use spikeword::audio::vad::{Vad, centred_clip};
use spikeword::audio::wav::write_pcm16;

#[derive(clap::Args)]
pub struct Args {
    /// The word being recorded (the sub-folder name).
    word: String,
    /// Folder of examples (`DIR/<word>/<n>.wav`), ready for `retrain --data DIR`.
    #[arg(long, default_value = "my_words")]
    dir: PathBuf,
    /// How many examples to keep.
    #[arg(long, default_value_t = 10, value_parser = super::values::count)]
    count: usize,
    /// Cut the examples out of a long recording instead of the microphone.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Input device (substring of its name).
    #[arg(long)]
    device: Option<String>,
    /// Give up after this many seconds without enough examples.
    #[arg(long, default_value_t = 120.0, value_parser = super::values::seconds)]
    timeout: f64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.word.is_empty() || a.word.contains(['/', '\\']) || a.word.starts_with('.') {
        bail!("'{}' cannot be a folder name", a.word);
    }
    let rate = 16_000u32;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let live = a.input.is_none();
    let mut source = match &a.input {
        Some(p) => {
            file_feed(p, rate, false, stop.clone()).with_context(|| p.display().to_string())?
        }
        None => super::open_mic(a.device.as_deref(), rate)?,
    };
    let dir = a.dir.join(&a.word);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Continue numbering after examples already there.
    let mut n = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let mut vad = Vad::new(rate);
    // Keep the last few seconds: an utterance is cut from here once it has ended.
    let keep = 4 * rate as usize;
    let (mut history, mut offset, mut total) = (Vec::<f32>::new(), 0usize, 0usize);
    let mut saved = 0;
    let meter = std::io::stderr().is_terminal();
    if live {
        eprintln!(
            "say \"{}\" {} times, pausing between them (Ctrl-C stops)",
            a.word, a.count
        );
    }
    let mut buf = Vec::new();
    let save = |history: &[f32],
                offset: usize,
                u: &spikeword::audio::vad::Utterance,
                n: &mut usize|
     -> Result<()> {
        let clip = centred_clip(history, offset, u, rate as usize);
        let path = dir.join(format!("{n}.wav"));
        write_pcm16(&path, &clip, rate)?;
        println!(
            "{}: {:.2}-{:.2} s -> {}",
            a.word,
            u.start as f64 / rate as f64,
            u.end as f64 / rate as f64,
            path.display()
        );
        *n += 1;
        Ok(())
    };
    loop {
        if stop.load(Ordering::Relaxed)
            || saved >= a.count
            || total as f64 > a.timeout * rate as f64
        {
            break;
        }
        buf.clear();
        match source.recv(&mut buf, Duration::from_millis(100))? {
            Recv::Data(_) => {}
            Recv::Timeout => continue,
            Recv::End => break,
        }
        total += buf.len();
        history.extend_from_slice(&buf);
        for u in vad.push(&buf) {
            if saved < a.count {
                save(&history, offset, &u, &mut n)?;
                saved += 1;
                if live && saved < a.count {
                    eprintln!("  {}/{} — again", saved, a.count);
                }
            }
        }
        if history.len() > keep {
            let cut = history.len() - keep;
            history.drain(..cut);
            offset += cut;
        }
        if meter && live {
            let rms = (buf.iter().map(|v| v * v).sum::<f32>() / buf.len().max(1) as f32).sqrt();
            let db = 20.0 * rms.max(1e-5).log10();
            let bars = (((db + 60.0) / 60.0).clamp(0.0, 1.0) * 30.0) as usize;
            eprint!(
                "\r[{:<30}] {:>4.0} dB  {}/{}  ",
                "#".repeat(bars),
                db,
                saved,
                a.count
            );
            let _ = std::io::stderr().flush();
        }
    }
    if saved < a.count
        && let Some(u) = vad.finish()
    {
        save(&history, offset, &u, &mut n)?;
        saved += 1;
    }
    if meter && live {
        eprintln!();
    }
    eprintln!("{saved} example(s) of \"{}\" in {}", a.word, dir.display());
    if saved == 0 {
        bail!("no utterance found (too quiet? check the input level)");
    }
    Ok(ExitCode::SUCCESS)
}
