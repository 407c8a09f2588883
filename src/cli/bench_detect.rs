use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use spikeword::Model;
use spikeword::data::{Dataset, Split};
use spikeword::eval::model_split_rule;
use spikeword::stream_bench::{
    FalseAlarm, Frames, Material, Point, SENTENCES, Stream, WordHits, false_alarms_at,
    hits_per_word_at, joined_streams, measure_operating_points, run_stream, sweep,
};

/// Default stream lengths: 10 minutes resolve 6 false alarms per hour, which is enough
/// to compare models; calibration picks thresholds for rates down to 0.5/h.
const BENCH_MINUTES: f32 = 10.0;
const CALIBRATION_MINUTES: f32 = 30.0;
/// Calibration joins streams of three seeds: one stream's false alarms come from a few of
/// its clips at its one noise level, and thresholds fitted to them missed their rate on
/// other seeds' streams (docs/detection.md).
const CALIBRATION_SEEDS: [u64; 3] = [1, 2, 3];

#[derive(clap::Args)]
pub struct Args {
    /// Model file (default: the bundled model).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    streams: StreamArgs,
    /// Detection thresholds to sweep (comma separated).
    #[arg(long, value_delimiter = ',', value_parser = super::values::probability,
          default_value = "0.3,0.4,0.5,0.6,0.7,0.8,0.85,0.9,0.95,0.98")]
    thresholds: Vec<f32>,
    /// Seconds a word must stay above the threshold to fire (default: as the model's
    /// operating points were calibrated, else 0).
    #[arg(long, value_parser = super::values::sustain_seconds)]
    sustain: Option<f32>,
    /// The calibrated operating point whose false alarms are listed with what was said
    /// under each (default 5 per hour).
    #[arg(long, value_parser = super::values::non_negative)]
    false_alarms_per_hour: Option<f32>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// DET curve picture (miss rate against false alarms per hour).
    #[arg(long)]
    png: Option<PathBuf>,
}

/// Where the two streams come from.
#[derive(clap::Args)]
pub struct StreamArgs {
    /// Speech Commands folder; its held-out speakers (the model's own split) voice the streams.
    #[arg(long, env = "SPIKEWORD_DATA")]
    data: PathBuf,
    /// Which held-out speakers: test, or validation (to choose settings on); bench-detect
    /// defaults to test, calibrate to validation.
    #[arg(long, value_enum)]
    split: Option<Split>,
    /// Minutes of each stream, per seed (default: 10 for bench-detect; 30 for calibrate,
    /// where a strict rate needs long streams to be resolved).
    #[arg(long, value_parser = super::values::stream_minutes)]
    minutes: Option<f32>,
    /// TTS engines voicing the sentences of the no-command stream (missing ones are
    /// skipped with a warning).
    #[arg(long, value_delimiter = ',', default_value = "espeak,flite,festival")]
    engines: Vec<String>,
    /// Voices per engine and sentence.
    #[arg(long, default_value_t = 2, value_parser = super::values::count)]
    voices: usize,
    /// Stream seeds (comma separated): several join their streams end to end, each with
    /// its own order and noise level (default: 1 for bench-detect; 1,2,3 for calibrate,
    /// whose false alarms come from a few clips at one noise level per stream).
    #[arg(long, value_delimiter = ',')]
    seed: Vec<u64>,
    /// Run the networks in integer arithmetic, as a neuromorphic chip would (the model's
    /// weights must be on a grid: `spikeword quantize`).
    #[arg(long)]
    integer: bool,
}

/// Both streams, run through the model once.
pub struct Streams {
    pub keyword: Stream,
    pub other: Stream,
    pub keyword_frames: Frames,
    pub other_frames: Frames,
    pub summary: String,
}

impl StreamArgs {
    /// The streams of `--split` (else `split`), `--minutes` long (else `minutes`) for
    /// each of `--seed` (else `seeds`).
    pub fn build(
        &self,
        model: &Model,
        split: Split,
        minutes: f32,
        seeds: &[u64],
    ) -> Result<Streams> {
        let split = self.split.unwrap_or(split);
        if split == Split::Train {
            bail!("--split train: detection is measured on held-out speakers (test or validation)");
        }
        let seeds = if self.seed.is_empty() {
            seeds
        } else {
            &self.seed
        };
        let &first_seed = seeds.first().context("no stream seed")?;
        let ds = Dataset::scan(&self.data, &model_split_rule(model)?)?;
        let (m, missing) = Material::load(
            model,
            &ds,
            split,
            &SENTENCES,
            (&self.engines, self.voices),
            first_seed,
        )
        .with_context(|| format!("{}", self.data.display()))?;
        let minutes = f64::from(self.minutes.unwrap_or(minutes));
        let rate = model.config.features.sample_rate;
        let (keyword, other) =
            joined_streams(&m, minutes, rate, seeds).context("no stream seed")?;
        let seeds_note = match seeds {
            [_] => String::new(),
            _ => format!(
                " (seeds {})",
                seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let summary = format!(
            "{:?} speakers{seeds_note}: {} command words in {:.1} min; no-command stream {:.1} min ({} other-word clips, {} synthetic sentences{})",
            split,
            keyword.words.len(),
            keyword.hours() * 60.0,
            other.hours() * 60.0,
            m.others.len(),
            m.sentences.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; no {}", missing.join(", "))
            }
        );
        let integer = super::integer_engine(model, self.integer)?;
        Ok(Streams {
            keyword_frames: run_stream(model, &keyword, integer.as_ref()),
            other_frames: run_stream(model, &other, integer.as_ref()),
            keyword,
            other,
            summary,
        })
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    let s = a.streams.build(&model, Split::Test, BENCH_MINUTES, &[1])?;
    let sustain = match a.sustain {
        Some(secs) => model.config.sustain_frames(secs),
        None => model
            .config
            .operating_point(spikeword::config::DEFAULT_FALSE_ALARMS_PER_HOUR)
            .map_or(0, |p| p.sustain_frames),
    };
    let points = sweep(
        &model,
        (&s.keyword_frames, &s.keyword),
        (&s.other_frames, &s.other),
        &a.thresholds,
        sustain,
    );
    let calibrated = measure_operating_points(
        &model,
        (&s.keyword_frames, &s.keyword),
        (&s.other_frames, &s.other),
    );
    let nc = &s.other;
    let rate = a
        .false_alarms_per_hour
        .unwrap_or(spikeword::config::DEFAULT_FALSE_ALARMS_PER_HOUR);
    let alarms = false_alarms_at(&model, (&s.other_frames, nc), rate);
    let per_word = hits_per_word_at(&model, (&s.keyword_frames, &s.keyword), rate);
    if a.json {
        let ops: Vec<_> = calibrated
            .iter()
            .map(|(r, p)| serde_json::json!({"calibrated_for_per_hour": r, "measured": p}))
            .collect();
        let j = serde_json::json!({"summary": s.summary, "keyword_minutes": s.keyword.hours() * 60.0,
            "no_command_minutes": nc.hours() * 60.0, "points": points, "operating_points": ops,
            "false_alarms": alarms.as_ref().map(|a| serde_json::json!({"point_per_hour": a.0, "events": a.1})),
            "hits_per_word": per_word.as_ref().map(|w| serde_json::json!({"point_per_hour": w.0, "words": w.1}))});
        println!("{j}");
    } else {
        println!("{}", s.summary);
        print!("{}", table(&points));
        for (r, p) in &calibrated {
            println!(
                "calibrated for {r:>4}/h (thresholds in the model): {:.1} % found ({}/{}), {:.1} false alarms/h",
                100.0 * p.hit_rate,
                p.hits,
                p.keywords,
                p.false_alarms_per_hour
            );
        }
        if let Some((rate, hits)) = &per_word {
            println!("{}", hits_line(*rate, hits));
        }
        if let Some((rate, alarms)) = &alarms {
            print!("{}", false_alarm_lines(*rate, alarms));
        }
    }
    if let Some(p) = &a.png {
        det_picture(&a, &points, &calibrated, nc.hours(), p)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The sweep (labelled by threshold) and the calibrated points (labelled by the rate they
/// were calibrated for) as a DET picture.
fn det_picture(
    a: &Args,
    points: &[Point],
    calibrated: &[(f32, Point)],
    hours: f64,
    path: &std::path::Path,
) -> Result<()> {
    let xy = |q: &Point, label: f32| (q.false_alarms_per_hour, 100.0 * (1.0 - q.hit_rate), label);
    let name = a
        .model
        .as_ref()
        .map_or("bundled model".into(), |p| p.display().to_string());
    let mut curves = vec![(
        format!("{name}: one threshold (label)"),
        points.iter().map(|q| xy(q, q.threshold)).collect(),
    )];
    if !calibrated.is_empty() {
        curves.push((
            "calibrated in the model (label: false alarms/h asked)".to_string(),
            calibrated.iter().map(|(r, q)| xy(q, *r)).collect(),
        ));
    }
    spikeword::plot::det_png("detection in running speech", &curves, 0.5 / hours, path)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One line: which command words an operating point finds, word by word.
fn hits_line(rate: f32, hits: &[WordHits]) -> String {
    let words: Vec<String> = hits
        .iter()
        .map(|h| format!("{} {}/{}", h.word, h.found, h.said))
        .collect();
    format!("found by the {rate}/h point: {}", words.join(", "))
}

/// What an operating point fired on in the no-command stream, most frequent first (at
/// most eight lines).
fn false_alarm_lines(rate: f32, alarms: &[FalseAlarm]) -> String {
    let mut s = format!(
        "false alarms of the {rate}/h point in the no-command stream: {}\n",
        alarms.len()
    );
    let mut causes: Vec<(String, usize)> = Vec::new();
    for a in alarms {
        let cause = match &a.said {
            Some(said) => format!("{} on {said:?}", a.word),
            None => format!("{} in a pause", a.word),
        };
        match causes.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => causes.push((cause, 1)),
        }
    }
    causes.sort_by_key(|c| std::cmp::Reverse(c.1));
    for (cause, n) in causes.iter().take(8) {
        s.push_str(&format!("  {n} × {cause}\n"));
    }
    if causes.len() > 8 {
        s.push_str(&format!("  … and {} more\n", causes.len() - 8));
    }
    s
}

fn table(points: &[Point]) -> String {
    let mut s = String::from(
        "threshold  words found    false alarms/h  (no-command stream)  wrong/repeated  between words\n",
    );
    for p in points {
        s.push_str(&format!(
            "{:>9.2}  {:>6.1} %  {:>3}/{:<3}  {:>8.1}       ({:>4} events)         {:>4}        {:>4}\n",
            p.threshold,
            100.0 * p.hit_rate,
            p.hits,
            p.keywords,
            p.false_alarms_per_hour,
            p.false_alarms,
            p.wrong_or_repeated,
            p.between_words
        ));
    }
    s
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Model file to calibrate (default: the bundled model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where the calibrated model goes (may be the same file: written atomically).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    streams: StreamArgs,
    /// A threshold per word (a greedy search) instead of one for all words: fits short
    /// validation streams too closely (docs/detection.md), use with long ones.
    #[arg(long)]
    per_word: bool,
    /// Seconds a word must stay above its threshold to fire, at every point made.
    #[arg(long, default_value_t = spikeword::config::DEFAULT_SUSTAIN_S, value_parser = super::values::sustain_seconds)]
    sustain: f32,
    /// False-alarm rates (per hour) to make operating points for.
    #[arg(long, value_delimiter = ',', value_parser = super::values::non_negative,
          default_value = "0.5,1,2,5,10,20,50")]
    rates: Vec<f32>,
}

/// Per-word thresholds for each false-alarm rate, chosen on streams of held-out
/// (by default validation) speakers and stored in the model file.
pub fn calibrate(mut a: CalibrateArgs) -> Result<ExitCode> {
    let mut model = super::load_model(&a.model)?;
    if a.streams.split == Some(Split::Test) {
        eprintln!(
            "note: calibrating on the test speakers; their figures then no longer measure it"
        );
    }
    a.rates.sort_by(f32::total_cmp);
    a.rates.dedup();
    let s = a.streams.build(
        &model,
        Split::Validation,
        CALIBRATION_MINUTES,
        &CALIBRATION_SEEDS,
    )?;
    println!("{}", s.summary);
    let find = if a.per_word {
        spikeword::stream_bench::calibrate_per_word
    } else {
        spikeword::stream_bench::calibrate
    };
    let (kw, nc) = ((&s.keyword_frames, &s.keyword), (&s.other_frames, &s.other));
    let sustain = model.config.sustain_frames(a.sustain);
    let points: Vec<_> = a
        .rates
        .iter()
        .map(|&r| find(&model, kw, nc, r, sustain))
        .collect();
    for p in &points {
        println!(
            "{:>6.1} false alarms/h: {:.1} % of command words, {:.1} false alarms/h measured",
            p.false_alarms_per_hour,
            100.0 * p.measured_hit_rate,
            p.measured_false_alarms_per_hour
        );
    }
    model.config.operating_points = points;
    model.save(&a.out)?;
    println!("saved {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
