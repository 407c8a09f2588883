use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use spikeword::audio::live::{LiveSource, Recv, feed_live};
use spikeword::audio::vad::{Utterance, Vad, centred_clip};
use spikeword::audio::wav::write_pcm16;

use super::listen::{level_bar, level_db};

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
    /// Cut the examples out of a long recording (`-`: a WAV stream on standard input)
    /// instead of the microphone.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Input device (substring of its name).
    #[arg(long)]
    device: Option<String>,
    /// Give up after this many seconds without enough examples.
    #[arg(long, default_value_t = 120.0, value_parser = super::values::seconds)]
    timeout: f64,
}

/// Examples are written at the Speech Commands rate.
const RATE: u32 = 16_000;

pub fn run(a: Args) -> Result<ExitCode> {
    if a.word.is_empty() || a.word.contains(['/', '\\']) || a.word.starts_with('.') {
        bail!("'{}' cannot be a folder name", a.word);
    }
    let stop = super::listen::stop_on_ctrl_c();
    let live = a.input.is_none();
    let mut source = match &a.input {
        Some(p) => feed_live(super::recording::open(p, RATE)?, false, stop.clone())?,
        None => super::open_mic(a.device.as_deref(), RATE)?,
    };
    let dir = a.dir.join(&a.word);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rec = Recorder {
        word: &a.word,
        next: next_free_number(&dir)?,
        dir,
        count: a.count,
        live,
        saved: 0,
        vad: Vad::new(RATE),
        history: Vec::new(),
        offset: 0,
    };
    let meter = std::io::stderr().is_terminal() && live;
    if live {
        eprintln!(
            "say \"{}\" {} times, pausing between them (Ctrl-C stops)",
            a.word, a.count
        );
    }
    cut_utterances(&mut source, &mut rec, &stop, a.timeout * RATE as f64, meter)?;
    if meter {
        eprintln!();
    }
    eprintln!(
        "{} example(s) of \"{}\" in {}",
        rec.saved,
        a.word,
        rec.dir.display()
    );
    if rec.saved == 0 {
        bail!("no utterance found (too quiet? check the input level)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The number after the highest `<n>.wav` already in `dir`, so that earlier examples stay.
fn next_free_number(dir: &Path) -> Result<usize> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1))
}

/// Reads the source until Ctrl-C, enough examples, `max_samples` read or the end of the
/// input, saving each utterance as it ends (and one still open at the end).
fn cut_utterances(
    source: &mut LiveSource,
    rec: &mut Recorder,
    stop: &AtomicBool,
    max_samples: f64,
    meter: bool,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    loop {
        if stop.load(Ordering::Relaxed) || rec.saved >= rec.count || total as f64 > max_samples {
            break;
        }
        buf.clear();
        match source.recv(&mut buf, Duration::from_millis(100))? {
            Recv::Data(_) => {}
            Recv::Timeout => continue,
            Recv::End => break,
        }
        total += buf.len();
        rec.push(&buf)?;
        if meter {
            let db = level_db(&buf);
            eprint!(
                "\r[{:<30}] {:>4.0} dB  {}/{}  ",
                level_bar(db),
                db,
                rec.saved,
                rec.count
            );
            let _ = std::io::stderr().flush();
        }
    }
    if rec.saved < rec.count
        && let Some(u) = rec.vad.finish()
    {
        rec.save(&u)?;
    }
    Ok(())
}

/// Finds utterances in the stream and saves each as the next numbered example.
struct Recorder<'a> {
    word: &'a str,
    dir: PathBuf,
    /// How many examples to keep.
    count: usize,
    /// How many are saved so far.
    saved: usize,
    /// The number of the next file.
    next: usize,
    /// Prompting for the next take (microphone only).
    live: bool,
    vad: Vad,
    /// The last few seconds, from sample `offset` of the stream: an utterance is cut from
    /// here once it has ended.
    history: Vec<f32>,
    offset: usize,
}

impl Recorder<'_> {
    /// Seconds of stream kept in `history`.
    const KEEP_S: usize = 4;

    fn push(&mut self, buf: &[f32]) -> Result<()> {
        self.history.extend_from_slice(buf);
        for u in self.vad.push(buf) {
            if self.saved < self.count {
                self.save(&u)?;
                if self.live && self.saved < self.count {
                    eprintln!("  {}/{} — again", self.saved, self.count);
                }
            }
        }
        let keep = Self::KEEP_S * RATE as usize;
        if self.history.len() > keep {
            let cut = self.history.len() - keep;
            self.history.drain(..cut);
            self.offset += cut;
        }
        Ok(())
    }

    /// Writes the utterance as a 1 s clip centred on it, and says where.
    fn save(&mut self, u: &Utterance) -> Result<()> {
        let clip = centred_clip(&self.history, self.offset, u, RATE as usize);
        let path = self.dir.join(format!("{}.wav", self.next));
        write_pcm16(&path, &clip, RATE)?;
        println!(
            "{}: {:.2}-{:.2} s -> {}{}",
            self.word,
            u.start as f64 / RATE as f64,
            u.end as f64 / RATE as f64,
            path.display(),
            level_advice(&clip)
        );
        self.next += 1;
        self.saved += 1;
        Ok(())
    }
}

/// A word whose peak reaches full scale was clipped (its spectrum is distorted); one that
/// peaks 40 dB under it is mostly the room. Either is worth a second take.
fn level_advice(clip: &[f32]) -> &'static str {
    let peak = clip.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak >= 0.99 {
        " (clipped: lower the input gain or move back)"
    } else if peak < 0.01 {
        " (quiet: raise the input gain or move closer)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::level_advice;

    #[test]
    fn clipped_and_quiet_takes_are_said() {
        let word =
            |peak: f32| -> Vec<f32> { (0..1600).map(|i| peak * (i as f32 * 0.3).sin()).collect() };
        assert!(level_advice(&word(1.0)).contains("clipped"));
        assert!(level_advice(&word(0.005)).contains("quiet"));
        assert_eq!(level_advice(&word(0.3)), "");
    }
}
