use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use spikeword::audio::AudioSource;
use spikeword::detect::{DetectorConfig, Engine, Event};
use spikeword::plot::{Figure, Mark, figure_png};
use spikeword::snn::FixedEnsemble;

use super::classify::{Format, csv_field};

#[derive(clap::Args, Clone)]
pub struct DetectorArgs {
    /// Probability every word needs to be reported, instead of the model's calibrated
    /// thresholds (an uncalibrated model uses 0.5).
    #[arg(long, value_parser = super::values::probability, conflicts_with = "false_alarms_per_hour")]
    pub threshold: Option<f32>,
    /// The model's calibrated operating point for this many false alarms per hour of
    /// running speech (default 5; see `spikeword calibrate`).
    #[arg(long, value_parser = super::values::non_negative)]
    pub false_alarms_per_hour: Option<f32>,
    /// Per-word threshold, e.g. `--word-threshold yes=0.8` (repeatable).
    #[arg(long, value_parser = parse_kv)]
    pub word_threshold: Vec<(String, f32)>,
    /// Seconds a word must stay above its threshold to fire (default: as the model's
    /// operating point was calibrated; with `--threshold` or an uncalibrated model, 0).
    #[arg(long, value_parser = super::values::sustain_seconds)]
    pub sustain: Option<f32>,
    /// Smoothing window (seconds); by default the model's clip decision window.
    #[arg(long, value_parser = super::values::window_seconds)]
    pub window: Option<f32>,
    /// No new event for this long after one (seconds): a word stays in the smoothing
    /// window for about a second, and its tail must not fire as another word.
    #[arg(long, default_value_t = 0.9, value_parser = super::values::refractory_seconds)]
    pub refractory: f32,
    /// Run the networks in integer arithmetic, as a neuromorphic chip would (the model's
    /// weights must be on a grid: `spikeword quantize`).
    #[arg(long)]
    pub integer: bool,
}

fn parse_kv(s: &str) -> Result<(String, f32), String> {
    let (k, v) = s.split_once('=').ok_or("expected WORD=PROB")?;
    let p: f32 = v.parse().map_err(|_| format!("bad probability {v}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability {p} outside 0..1"));
    }
    Ok((k.to_string(), p))
}

impl DetectorArgs {
    /// The streaming engine these options describe, in integers when `integer` holds the
    /// engine `--integer` asked for (`super::integer_engine`).
    pub fn engine<'m>(
        &self,
        model: &'m spikeword::Model,
        integer: Option<&'m FixedEnsemble>,
    ) -> Result<Engine<'m>> {
        let engine = Engine::new(model, self.config(model)?);
        Ok(match integer {
            Some(fixed) => engine.in_integers(fixed),
            None => engine,
        })
    }

    /// The detector settings for `model`, checked against its words.
    pub fn config(&self, model: &spikeword::Model) -> Result<DetectorConfig> {
        let frame_rate = model.config.features.frame_rate();
        let Thresholds {
            threshold,
            mut thresholds,
            sustain,
        } = self.thresholds(model)?;
        thresholds.extend(self.word_threshold.iter().cloned());
        let sustain = self
            .sustain
            .map_or(sustain, |s| model.config.sustain_frames(s));
        let cfg = DetectorConfig {
            window: self
                .window
                .map_or(0, |w| ((w * frame_rate).round() as usize).max(1)),
            threshold,
            thresholds,
            sustain,
            refractory: (self.refractory * frame_rate).round() as usize,
            ..DetectorConfig::default()
        };
        cfg.validate(model.labels())
            .map_err(|e| anyhow::anyhow!("--word-threshold: {e}"))?;
        Ok(cfg)
    }
}

/// The thresholds a detector starts from, before `--word-threshold` and `--sustain`.
struct Thresholds {
    /// For every word without its own.
    threshold: f32,
    thresholds: HashMap<String, f32>,
    /// Frames, as the operating point was calibrated with.
    sustain: usize,
}

impl Thresholds {
    fn one(threshold: f32) -> Self {
        Self {
            threshold,
            thresholds: HashMap::new(),
            sustain: 0,
        }
    }
}

impl DetectorArgs {
    /// `--threshold` for every word, else the model's operating point, else 0.5.
    fn thresholds(&self, model: &spikeword::Model) -> Result<Thresholds> {
        let fallback = DetectorConfig::default().threshold;
        if let Some(t) = self.threshold {
            return Ok(Thresholds::one(t));
        }
        let rate = self
            .false_alarms_per_hour
            .unwrap_or(spikeword::config::DEFAULT_FALSE_ALARMS_PER_HOUR);
        match model.config.operating_point(rate) {
            Some(p) => Ok(Thresholds {
                threshold: fallback,
                thresholds: p.thresholds.clone().into_iter().collect(),
                sustain: p.sustain_frames,
            }),
            None if self.false_alarms_per_hour.is_some() => anyhow::bail!(
                "--false-alarms-per-hour: this model has no calibrated thresholds (make them with `spikeword calibrate`), use --threshold"
            ),
            None => Ok(Thresholds::one(fallback)),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Recordings of any length (streamed from disk), folders of them (searched
    /// recursively), or `-` for a WAV stream on standard input (events are printed as they
    /// are heard). With several, each event names its recording.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Shorthand for `--format json` (one event per line).
    #[arg(long)]
    json: bool,
    /// Timeline picture (spectrogram, spike raster, words) of one recording up to 5
    /// minutes.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    det: DetectorArgs,
}

/// An event as printed, with its recording's name where several are searched.
pub fn print_event(
    out: &mut impl Write,
    file: Option<&str>,
    e: &Event,
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let line = match file {
                Some(file) => serde_json::to_string(&Named { file, event: e }),
                None => serde_json::to_string(e),
            };
            writeln!(out, "{}", line.expect("events serialise"))
        }
        Format::Csv => {
            if let Some(f) = file {
                write!(out, "{},", csv_field(f))?;
            }
            writeln!(out, "{:.3},{:.3},{},{:.4}", e.start, e.end, e.word, e.score)
        }
        Format::Table => {
            if let Some(f) = file {
                write!(out, "{f}  ")?;
            }
            writeln!(
                out,
                "{:>8.2}s  {:>8.2}s  {:<10} {:.2}",
                e.start, e.end, e.word, e.score
            )
        }
    }
}

/// An event of one of several recordings, as a JSON line.
#[derive(serde::Serialize)]
struct Named<'a> {
    file: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

/// `--png` keeps the audio in memory, so it is limited to this much.
const PNG_MAX_SECONDS: usize = 300;

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    let files = super::recording::expand_folders(&a.files)?;
    // One file given by name prints as always; a folder or several name each event.
    let named = files.len() > 1 || a.files.iter().any(|p| p.is_dir());
    if a.png.is_some() && named {
        anyhow::bail!("--png draws one recording: give one file");
    }
    let format = if a.json { Format::Json } else { a.format };
    let integer = super::integer_engine(&model, a.det.integer)?;
    let keep_up_to = match a.png {
        Some(_) => PNG_MAX_SECONDS * model.config.features.sample_rate as usize,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    if format == Format::Csv {
        writeln!(
            out,
            "{}start,end,word,score",
            if named { "file," } else { "" }
        )?;
    }
    let t0 = Instant::now();
    let (mut n_events, mut samples, mut failed, mut last) = (0, 0, 0, None);
    for file in &files {
        let name = named.then(|| file.display().to_string());
        let mut engine = a.det.engine(&model, integer.as_ref())?;
        let heard = detect_one(&model, file, &mut engine, keep_up_to, |e| {
            print_event(&mut out, name.as_deref(), e, format)
        });
        match (heard, &name) {
            (Ok(h), _) => {
                (n_events, samples) = (n_events + h.events.len(), samples + h.samples);
                last = Some(h);
            }
            (Err(e), None) => return Err(e),
            (Err(e), Some(name)) => {
                failed += 1;
                report_failure(&mut out, name, &e, format)?;
            }
        }
    }
    out.flush()?;
    let secs = samples as f64 / model.config.features.sample_rate as f64;
    let speed = secs / t0.elapsed().as_secs_f64().max(1e-9);
    let audio = match named {
        true => format!("{} recordings, {secs:.1} s", files.len() - failed),
        false => format!("{secs:.1} s"),
    };
    eprintln!("{n_events} events in {audio} of audio ({speed:.0}x real time)");
    if let (Some(p), Some(h)) = (&a.png, &last) {
        if h.samples > keep_up_to {
            anyhow::bail!("--png is limited to 5 minutes of audio ({secs:.0} s given)");
        }
        timeline_png(&model, &files[0], &h.kept, &h.events, p)?;
        eprintln!("wrote {}", p.display());
    }
    if failed > 0 {
        eprintln!("{failed} of {} recordings could not be read", files.len());
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// A recording that could not be read: said where its events would have been (JSON) or
/// on standard error, and the next one is searched.
fn report_failure(
    out: &mut impl Write,
    name: &str,
    e: &anyhow::Error,
    format: Format,
) -> Result<()> {
    let cause = format!("{e:#}").replace('\n', " ");
    match format {
        Format::Json => writeln!(out, "{}", serde_json::json!({"file": name, "error": cause}))?,
        _ => eprintln!("error: {cause}"),
    }
    Ok(())
}

/// What one recording held.
struct Heard {
    events: Vec<Event>,
    samples: usize,
    /// Its first samples, for the picture.
    kept: Vec<f32>,
}

/// Samples read at a time: a pipe fed live (`arecord … | spikeword detect -`) waits for
/// each read to fill, so a word is printed at most about a quarter second late.
const CHUNK: usize = 1 << 12;

/// Streams one recording through `engine`, printing each event as it is heard, and
/// keeps its first `keep_up_to` samples (for the picture).
fn detect_one(
    model: &spikeword::Model,
    file: &Path,
    engine: &mut Engine,
    keep_up_to: usize,
    mut print: impl FnMut(&Event) -> std::io::Result<()>,
) -> Result<Heard> {
    let fcfg = &model.config.features;
    let mut src = super::recording::open(file, fcfg.sample_rate)?;
    let mut heard = Heard {
        events: Vec::new(),
        samples: 0,
        kept: Vec::new(),
    };
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let n = src
            .read(&mut buf, CHUNK)
            .with_context(|| super::recording::name(file))?;
        if n == 0 {
            break;
        }
        heard.samples += n;
        let room = keep_up_to.saturating_sub(heard.kept.len());
        heard.kept.extend_from_slice(&buf[..n.min(room)]);
        // A closed output (`| head`) stops the reading at once.
        let mut unwritten = None;
        engine.push(&buf, |e| {
            if unwritten.is_none() {
                unwritten = print(&e).err();
            }
            heard.events.push(e);
        });
        if let Some(e) = unwritten {
            return Err(e.into());
        }
    }
    super::recording::check_long_enough(file, heard.samples, fcfg)?;
    if let Some(e) = engine.finish() {
        print(&e)?;
        heard.events.push(e);
    }
    Ok(heard)
}

/// The recording's waveform, log-mel, input spikes and detected words as one picture.
fn timeline_png(
    model: &spikeword::Model,
    file: &Path,
    samples: &[f32],
    events: &[Event],
    png: &Path,
) -> Result<()> {
    let fcfg = &model.config.features;
    let mel = spikeword::log_mel(samples, fcfg);
    let mut x = mel.data.clone();
    let norm = model.normalizer();
    x.chunks_exact_mut(mel.n_mels).for_each(|f| norm.apply(f));
    // The current encoder has no spikes of its own: show what send-on-delta would send.
    let enc = match &model.config.encoder {
        spikeword::EncoderConfig::Current => spikeword::EncoderConfig::Delta { threshold: 0.5 },
        e => e.clone(),
    };
    let (raster, _) = spikeword::encoding::encode_clip(&enc, &x, mel.n_mels);
    figure_png(
        &Figure {
            title: format!("{}: {} words", super::recording::name(file), events.len()),
            samples,
            sample_rate: fcfg.sample_rate,
            logmel: &mel.data,
            n_mels: mel.n_mels,
            frame_rate: fcfg.frame_rate(),
            raster: &raster,
            raster_channels: enc.out_channels(mel.n_mels),
            raster_label: "input spikes (send-on-delta ON/OFF)".into(),
            marks: events
                .iter()
                .map(|e| Mark {
                    start: e.start as f32,
                    end: e.end as f32,
                    label: format!("{} {:.2}", e.word, e.score),
                })
                .collect(),
        },
        png,
    )
}
