//! Detection as a user leaves it running: two streams built reproducibly from held-out
//! speakers — command words one by one in background noise, and running speech with no
//! command word at all (other words back to back, synthetic sentences, noise) — run
//! through the streaming engine once, then through the detector at every threshold of a
//! sweep: the share of command words found against false alarms per hour.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::OperatingPoint;
use crate::config::{SILENCE, UNKNOWN};
use crate::data::synth::speak_texts;
use crate::data::{Dataset, LabeledAudio, Split, load_labeled};
use crate::detect::{Detector, DetectorConfig, Engine, Event};
use crate::model::Model;
use crate::snn::FixedEnsemble;
use crate::util::Rng;

/// Sentences with none of the Speech Commands keywords (nor their homophones), voiced by
/// the TTS engines for the no-command stream.
pub const SENTENCES: [&str; 20] = [
    "the train to the city leaves at nine fifteen every morning",
    "please put the kettle in the kitchen and wait for me",
    "my sister bought a new bicycle last summer",
    "we will meet at the station after lunch",
    "the weather will be warm and sunny tomorrow",
    "could you send me the report by friday",
    "the children played in the garden all afternoon",
    "I think the meeting was moved to thursday",
    "there is a small cafe near the old bridge",
    "she reads the newspaper with her coffee",
    "turn the music a little louder please",
    "the dog barked at the man with the parcel",
    "how many people came to the party",
    "this is the best soup I have ever tasted",
    "the plane landed safely despite the storm",
    "remember to water the plants while I am away",
    "he fixed the broken window with tape",
    "what time does the museum open",
    "the price of bread has risen again",
    "let us walk along the river before dinner",
];

/// A word placed in a stream.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// A built stream: samples and where its command words are.
pub struct Stream {
    pub samples: Vec<f32>,
    pub words: Vec<Placed>,
    /// A no-command stream's other words and sentences, by name and text: what a false
    /// alarm fired on.
    pub said: Vec<Placed>,
    pub rate: u32,
}

impl Stream {
    pub fn hours(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64 / 3600.0
    }

    /// `next` after this stream (its word times shifted): streams of several seeds, each
    /// with its own order and noise level, as one.
    pub fn then(mut self, next: Stream) -> Stream {
        let at = self.seconds();
        let shift = |p: Placed| Placed {
            start: p.start + at,
            end: p.end + at,
            ..p
        };
        self.words.extend(next.words.into_iter().map(shift));
        self.said.extend(next.said.into_iter().map(shift));
        self.samples.extend(next.samples);
        self
    }

    fn noise_gap(&mut self, noise: &[Vec<f32>], level: f32, s: f32, rng: &mut Rng) {
        let n = (s * self.rate as f32) as usize;
        self.samples.extend(noise_bed(noise, n, level, rng));
    }

    /// Appends `clip` over the noise bed.
    fn speech(&mut self, clip: &[f32], noise: &[Vec<f32>], level: f32, rng: &mut Rng) {
        let bed = noise_bed(noise, clip.len(), level, rng);
        self.samples
            .extend(clip.iter().zip(bed).map(|(a, b)| (a + b).clamp(-1.0, 1.0)));
    }

    /// Appends speech that is not a command word, noting what was said.
    fn say(&mut self, what: &str, clip: &[f32], noise: &[Vec<f32>], level: f32, rng: &mut Rng) {
        let start = self.seconds();
        self.speech(clip, noise, level, rng);
        self.said.push(Placed {
            word: what.to_string(),
            start,
            end: self.seconds(),
        });
    }

    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// A crop of background noise at `level` (RMS), or near-silence without noise files.
fn noise_bed(noise: &[Vec<f32>], n: usize, level: f32, rng: &mut Rng) -> Vec<f32> {
    if noise.iter().all(|f| f.is_empty()) {
        return (0..n).map(|_| rng.normal() * 1e-4).collect();
    }
    // Files may be shorter than the gap (1 s crops): pieces of random files, end to end.
    let mut x = Vec::with_capacity(n);
    while x.len() < n {
        let f = &noise[rng.below(noise.len())];
        if f.is_empty() {
            continue;
        }
        let take = (n - x.len()).min(f.len());
        let at = rng.below(f.len() - take + 1);
        x.extend_from_slice(&f[at..at + take]);
    }
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / n.max(1) as f32)
        .sqrt()
        .max(1e-6);
    x.iter().map(|v| v * level / rms).collect()
}

/// What the streams are built from: held-out clips, synthetic sentences, noise.
pub struct Material {
    /// Command-word clips (label = a reportable word).
    pub keywords: Vec<(String, Vec<f32>)>,
    /// Clips of other words (`_unknown_`) with the word, sentences with their text.
    pub others: Vec<(String, Vec<f32>)>,
    pub sentences: Vec<(String, Vec<f32>)>,
    pub noise: Vec<Vec<f32>>,
}

impl Material {
    /// The clips and noise of `split` (the model's own speaker split) and `texts` voiced
    /// by `engines` (missing engines are returned, not fatal).
    pub fn load(
        model: &Model,
        ds: &Dataset,
        split: Split,
        texts: &[&str],
        voices: (&[String], usize),
        seed: u64,
    ) -> anyhow::Result<(Material, Vec<String>)> {
        let rate = model.config.features.sample_rate;
        let (clips, _) = load_labeled(ds, Some(split), model.labels(), rate);
        let (sentences, missing) = speak_texts(texts, voices.0, voices.1, seed)?;
        let m = Material::from_clips(
            clips,
            model.labels(),
            sentences,
            ds.noise_waves(split, rate),
        );
        if m.keywords.is_empty() {
            anyhow::bail!("no command-word clips of the {split:?} speakers");
        }
        Ok((m, missing))
    }

    /// Sorts labelled clips into command words and other words for `labels`.
    pub fn from_clips(
        clips: Vec<LabeledAudio>,
        labels: &[String],
        sentences: Vec<(String, Vec<f32>)>,
        noise: Vec<Vec<f32>>,
    ) -> Material {
        let (mut keywords, mut others) = (Vec::new(), Vec::new());
        for c in clips {
            match labels[c.label].as_str() {
                SILENCE => {}
                UNKNOWN => others.push((c.word, c.samples)),
                w => keywords.push((w.to_string(), c.samples)),
            }
        }
        Material {
            keywords,
            others,
            sentences,
            noise,
        }
    }
}

/// Noise level (RMS) of a stream's background: quiet to noisy room.
fn bed_level(rng: &mut Rng) -> f32 {
    10f32.powf(rng.range(-3.5, -2.0))
}

/// Command words one by one, each after 1–3 s of background noise, every clip used once
/// per pass (passes repeat, reshuffled, until `minutes`).
pub fn keyword_stream(m: &Material, minutes: f64, rate: u32, seed: u64) -> Stream {
    let mut rng = Rng::new(seed);
    let mut s = Stream {
        samples: Vec::new(),
        words: Vec::new(),
        said: Vec::new(),
        rate,
    };
    let level = bed_level(&mut rng);
    let mut order: Vec<usize> = (0..m.keywords.len()).collect();
    while s.seconds() < minutes * 60.0 && !order.is_empty() {
        rng.shuffle(&mut order);
        for &i in &order {
            let gap = rng.range(1.0, 3.0);
            s.noise_gap(&m.noise, level, gap, &mut rng);
            let (word, clip) = &m.keywords[i];
            let start = s.seconds();
            s.speech(clip, &m.noise, level, &mut rng);
            s.words.push(Placed {
                word: word.clone(),
                start,
                end: s.seconds(),
            });
            if s.seconds() >= minutes * 60.0 {
                break;
            }
        }
    }
    s.noise_gap(&m.noise, level, 1.5, &mut rng);
    s
}

/// The keyword and the no-command stream of every seed, `minutes` each, joined end to end
/// in the order of `seeds` (`None` without a seed).
pub fn joined_streams(
    m: &Material,
    minutes: f64,
    rate: u32,
    seeds: &[u64],
) -> Option<(Stream, Stream)> {
    let join = |make: fn(&Material, f64, u32, u64) -> Stream| {
        seeds
            .iter()
            .map(|&s| make(m, minutes, rate, s))
            .reduce(Stream::then)
    };
    Some((join(keyword_stream)?, join(no_command_stream)?))
}

/// Running speech without a command word: runs of 2–6 other words back to back (as in
/// talk), sentences, and pauses of every length, until `minutes`.
pub fn no_command_stream(m: &Material, minutes: f64, rate: u32, seed: u64) -> Stream {
    let mut rng = Rng::new(seed ^ 0x5eed_0fa1_a5a5);
    let mut s = Stream {
        samples: Vec::new(),
        words: Vec::new(),
        said: Vec::new(),
        rate,
    };
    let level = bed_level(&mut rng);
    if m.others.is_empty() && m.sentences.is_empty() {
        s.noise_gap(&m.noise, level, (minutes * 60.0) as f32, &mut rng);
        return s;
    }
    while s.seconds() < minutes * 60.0 {
        let use_sentence = !m.sentences.is_empty() && (m.others.is_empty() || rng.below(2) == 0);
        if use_sentence {
            let (text, x) = &m.sentences[rng.below(m.sentences.len())];
            s.say(text, x, &m.noise, level, &mut rng);
        } else {
            for _ in 0..2 + rng.below(5) {
                let (word, x) = &m.others[rng.below(m.others.len())];
                s.say(word, &trim(x, rate), &m.noise, level, &mut rng);
                let pause = rng.range(0.05, 0.3);
                s.noise_gap(&m.noise, level, pause, &mut rng);
            }
        }
        // Pauses from a breath to a long silence.
        let pause = rng.range(0.2, 1.0) * if rng.below(4) == 0 { 6.0 } else { 1.0 };
        s.noise_gap(&m.noise, level, pause, &mut rng);
    }
    s
}

/// A clip cut to where its energy is (as said in a sentence), 50 ms either side.
fn trim(x: &[f32], rate: u32) -> Vec<f32> {
    let hop = (rate / 100) as usize;
    let e: Vec<f32> = x
        .chunks(hop)
        .map(|c| c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32)
        .collect();
    let peak = e.iter().cloned().fold(0.0, f32::max);
    let on = |v: &f32| *v > peak * 1e-3;
    let (Some(a), Some(b)) = (e.iter().position(on), e.iter().rposition(on)) else {
        return x.to_vec();
    };
    let lo = a.saturating_sub(5) * hop;
    let hi = ((b + 6) * hop).min(x.len());
    x[lo..hi].to_vec()
}

/// The engine's raw class scores and log-energy of every frame of a stream.
pub struct Frames {
    scores: Vec<f32>,
    energy: Vec<f32>,
}

/// Runs the stream through the streaming engine once (in integers with `integer`).
pub fn run_stream(model: &Model, stream: &Stream, integer: Option<&FixedEnsemble>) -> Frames {
    let mut engine = Engine::new(model, DetectorConfig::default());
    if let Some(fixed) = integer {
        engine = engine.in_integers(fixed);
    }
    let (mut scores, mut energy) = (Vec::new(), Vec::new());
    for chunk in stream.samples.chunks(1600) {
        engine.push_scores(chunk, |s, e| {
            scores.extend_from_slice(s);
            energy.push(e);
        });
    }
    Frames { scores, energy }
}

impl Frames {
    /// Raw class scores, `[frames][classes]` flat.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Log-energy of every frame.
    pub fn energy(&self) -> &[f32] {
        &self.energy
    }

    /// Per frame, the highest smoothed probability of a reportable word: how close the
    /// detector (at any threshold) comes to firing there.
    pub fn closest_to_firing(&self, model: &Model) -> Vec<f32> {
        let labels = model.labels();
        let cfg = DetectorConfig {
            threshold: 1.0,
            window: model.decision_window(),
            ..DetectorConfig::default()
        };
        let mut d = Detector::new(labels, &model.config.features, cfg);
        let word: Vec<bool> = labels
            .iter()
            .map(|l| l != SILENCE && l != UNKNOWN)
            .collect();
        self.scores
            .chunks_exact(labels.len())
            .zip(&self.energy)
            .map(|(s, e)| {
                d.push(s, *e);
                d.smoothed()
                    .iter()
                    .zip(&word)
                    .filter(|(_, w)| **w)
                    .fold(0f32, |m, (p, _)| m.max(*p))
            })
            .collect()
    }
}

/// The detector's events over recorded frames.
pub fn detect(model: &Model, frames: &Frames, mut cfg: DetectorConfig) -> Vec<Event> {
    if cfg.window == 0 {
        cfg.window = model.decision_window();
    }
    let n = model.labels().len();
    let mut d = Detector::new(model.labels(), &model.config.features, cfg);
    let mut events: Vec<Event> = frames
        .scores
        .chunks_exact(n)
        .zip(&frames.energy)
        .filter_map(|(s, e)| d.push(s, *e))
        .collect();
    events.extend(d.flush());
    events
}

/// A false alarm and what was said under it.
#[derive(Debug, Clone, Serialize)]
pub struct FalseAlarm {
    pub word: String,
    /// Seconds from the start of the no-command stream.
    pub start: f64,
    /// The other word or sentence the event overlaps most; `None` in a pause.
    pub said: Option<String>,
}

/// Names what each event of a no-command stream fired on.
pub fn false_alarm_causes(events: &[Event], said: &[Placed]) -> Vec<FalseAlarm> {
    events
        .iter()
        .map(|e| {
            let overlap = |p: &Placed| e.end.min(p.end) - e.start.max(p.start);
            let best = said
                .iter()
                .filter(|p| overlap(p) > 0.0)
                .max_by(|a, b| overlap(a).total_cmp(&overlap(b)));
            FalseAlarm {
                word: e.word.clone(),
                start: e.start,
                said: best.map(|p| p.word.clone()),
            }
        })
        .collect()
}

/// One threshold of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub threshold: f32,
    /// Command words found with the right word.
    pub hits: usize,
    pub keywords: usize,
    pub hit_rate: f64,
    /// Events in the no-command stream, and per hour of it.
    pub false_alarms: usize,
    pub false_alarms_per_hour: f64,
    /// In the keyword stream: events on a word that name another word or repeat a hit,
    /// and events between words.
    pub wrong_or_repeated: usize,
    pub between_words: usize,
}

/// Seconds an event may start before or end after the word it reports.
const SLACK_S: f64 = 0.3;

/// Matches events against the placed words: (hits, wrong word or repeated, between words).
pub fn score_keywords(events: &[Event], words: &[Placed]) -> (usize, usize, usize) {
    let (found, wrong, between) = match_keywords(events, words);
    (found.iter().filter(|f| **f).count(), wrong, between)
}

/// Which placed words an event found, with the events on a word that name another word or
/// repeat a hit, and the events between words.
fn match_keywords(events: &[Event], words: &[Placed]) -> (Vec<bool>, usize, usize) {
    let mut found = vec![false; words.len()];
    let (mut wrong, mut between) = (0, 0);
    for e in events {
        let near = words
            .iter()
            .enumerate()
            .filter(|(_, w)| e.end > w.start - SLACK_S && e.start < w.end + SLACK_S)
            .find(|(i, w)| w.word == e.word && !found[*i]);
        match near {
            Some((i, _)) => found[i] = true,
            None if words
                .iter()
                .any(|w| e.end > w.start - SLACK_S && e.start < w.end + SLACK_S) =>
            {
                wrong += 1
            }
            None => between += 1,
        }
    }
    (found, wrong, between)
}

/// How many times a command word was said in the keyword stream and found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WordHits {
    pub word: String,
    pub found: usize,
    pub said: usize,
}

/// Each command word's hits, in the order of `labels` (words never said are left out).
pub fn hits_per_word(events: &[Event], words: &[Placed], labels: &[String]) -> Vec<WordHits> {
    let (found, _, _) = match_keywords(events, words);
    labels
        .iter()
        .map(|l| {
            let mine = || words.iter().zip(&found).filter(|(w, _)| w.word == *l);
            WordHits {
                word: l.clone(),
                found: mine().filter(|(_, f)| **f).count(),
                said: mine().count(),
            }
        })
        .filter(|h| h.said > 0)
        .collect()
}

/// Each command word's hits at the model's operating point for `per_hour`; `None` for a
/// model not calibrated.
pub fn hits_per_word_at(
    model: &Model,
    keyword: (&Frames, &Stream),
    per_hour: f32,
) -> Option<(f32, Vec<WordHits>)> {
    let (rate, events) = events_at(model, keyword.0, per_hour)?;
    let hits = hits_per_word(&events, &keyword.1.words, &model.config.labels);
    Some((rate, hits))
}

/// The events of the model's operating point for `per_hour` over `frames`, with the rate
/// that point was calibrated for; `None` for a model not calibrated.
fn events_at(model: &Model, frames: &Frames, per_hour: f32) -> Option<(f32, Vec<Event>)> {
    let op = model.config.operating_point(per_hour)?;
    let cfg = per_word(&op.thresholds, op.sustain_frames);
    Some((op.false_alarms_per_hour, detect(model, frames, cfg)))
}

/// The sweep over `thresholds` (one global threshold for every word).
pub fn sweep(
    model: &Model,
    keyword: (&Frames, &Stream),
    no_command: (&Frames, &Stream),
    thresholds: &[f32],
    sustain: usize,
) -> Vec<Point> {
    thresholds
        .iter()
        .map(|&t| measure(model, keyword, no_command, one_threshold(t, sustain)))
        .collect()
}

/// The default detector with threshold `t` for every word.
fn one_threshold(t: f32, sustain: usize) -> DetectorConfig {
    DetectorConfig {
        threshold: t,
        sustain,
        ..DetectorConfig::default()
    }
}

/// The default detector with a threshold per word.
fn per_word(thresholds: &BTreeMap<String, f32>, sustain: usize) -> DetectorConfig {
    DetectorConfig {
        thresholds: thresholds.clone().into_iter().collect(),
        sustain,
        ..DetectorConfig::default()
    }
}

/// What calibration chose for `per_hour`, with what the streams measured there.
fn operating_point(
    per_hour: f32,
    thresholds: BTreeMap<String, f32>,
    sustain: usize,
    p: &Point,
) -> OperatingPoint {
    OperatingPoint {
        false_alarms_per_hour: per_hour,
        thresholds,
        measured_hit_rate: p.hit_rate as f32,
        measured_false_alarms_per_hour: p.false_alarms_per_hour as f32,
        sustain_frames: sustain,
    }
}

/// Hits and false alarms of one detector setting (`threshold` reports its global one).
pub fn measure(
    model: &Model,
    keyword: (&Frames, &Stream),
    no_command: (&Frames, &Stream),
    cfg: DetectorConfig,
) -> Point {
    let ek = detect(model, keyword.0, cfg.clone());
    let (hits, wrong_or_repeated, between_words) = score_keywords(&ek, &keyword.1.words);
    let threshold = cfg.threshold;
    let fa = detect(model, no_command.0, cfg).len();
    let n = keyword.1.words.len();
    Point {
        threshold,
        hits,
        keywords: n,
        hit_rate: hits as f64 / n.max(1) as f64,
        false_alarms: fa,
        false_alarms_per_hour: fa as f64 / no_command.1.hours().max(1e-9),
        wrong_or_repeated,
        between_words,
    }
}

/// Each of the model's calibrated operating points measured on these streams.
pub fn measure_operating_points(
    model: &Model,
    keyword: (&Frames, &Stream),
    no_command: (&Frames, &Stream),
) -> Vec<(f32, Point)> {
    model
        .config
        .operating_points
        .iter()
        .map(|op| {
            let cfg = per_word(&op.thresholds, op.sustain_frames);
            let p = measure(model, keyword, no_command, cfg);
            (op.false_alarms_per_hour, p)
        })
        .collect()
}

/// The false alarms of the model's operating point for `per_hour` in the no-command
/// stream, each with what was said under it; `None` for a model not calibrated.
pub fn false_alarms_at(
    model: &Model,
    no_command: (&Frames, &Stream),
    per_hour: f32,
) -> Option<(f32, Vec<FalseAlarm>)> {
    let (rate, events) = events_at(model, no_command.0, per_hour)?;
    Some((rate, false_alarm_causes(&events, &no_command.1.said)))
}

/// Threshold steps calibration moves a word through.
const GRID: [f32; 13] = [
    0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99,
];

/// The words a detector reports.
fn reportable(model: &Model) -> Vec<String> {
    model
        .labels()
        .iter()
        .filter(|l| *l != SILENCE && *l != UNKNOWN)
        .cloned()
        .collect()
}

/// The lowest threshold (in steps of 0.01), the same for every word, with at most
/// `per_hour` false alarms in the no-command stream. Robust where the streams are short:
/// per-word search fits the few false alarms a short stream holds (`calibrate_per_word`).
pub fn calibrate(
    model: &Model,
    keyword: (&Frames, &Stream),
    no_command: (&Frames, &Stream),
    per_hour: f32,
    sustain: usize,
) -> OperatingPoint {
    let mut last = None;
    for k in 30..=99 {
        let t = k as f32 / 100.0;
        let p = measure(model, keyword, no_command, one_threshold(t, sustain));
        let done = p.false_alarms_per_hour <= per_hour as f64;
        last = Some((t, p));
        if done {
            break;
        }
    }
    let (t, p) = last.expect("the loop runs");
    let thresholds = reportable(model).into_iter().map(|w| (w, t)).collect();
    operating_point(per_hour, thresholds, sustain, &p)
}

/// Per-word thresholds for at most `per_hour` false alarms in the no-command stream that
/// keep as many command words as they can: every word starts at the lowest step; while
/// there are too many false alarms, the word whose next step removes false alarms at the
/// least cost in hits moves up (words that cost nothing first). Needs long validation
/// streams: on short ones it fits the handful of false alarms they hold.
pub fn calibrate_per_word(
    model: &Model,
    keyword: (&Frames, &Stream),
    no_command: (&Frames, &Stream),
    per_hour: f32,
    sustain: usize,
) -> OperatingPoint {
    let words = reportable(model);
    let mut step = vec![0usize; words.len()];
    let thresholds = |step: &[usize]| -> BTreeMap<String, f32> {
        words
            .iter()
            .zip(step)
            .map(|(w, &k)| (w.clone(), GRID[k]))
            .collect()
    };
    let try_steps = |step: &[usize]| {
        let cfg = per_word(&thresholds(step), sustain);
        let hits = score_keywords(&detect(model, keyword.0, cfg.clone()), &keyword.1.words).0;
        let fa = detect(model, no_command.0, cfg);
        (hits, fa)
    };
    let hours = no_command.1.hours().max(1e-9);
    let (mut hits, mut fa) = try_steps(&step);
    while fa.len() as f64 / hours > per_hour as f64 {
        let mut best: Option<(f64, usize, usize, Vec<Event>)> = None;
        for (i, w) in words.iter().enumerate() {
            if step[i] + 1 == GRID.len() || !fa.iter().any(|e| &e.word == w) {
                continue;
            }
            step[i] += 1;
            let (h, f) = try_steps(&step);
            step[i] -= 1;
            let removed = fa.len().saturating_sub(f.len());
            if removed == 0 {
                continue;
            }
            let cost = hits.saturating_sub(h) as f64 / removed as f64;
            if best.as_ref().is_none_or(|b| cost < b.0) {
                best = Some((cost, i, h, f));
            }
        }
        match best {
            Some((_, i, h, f)) => {
                step[i] += 1;
                (hits, fa) = (h, f);
            }
            None => {
                // No single step helps (events move between words): raise every word
                // that fires, or stop at the top.
                let firing: Vec<usize> = (0..words.len())
                    .filter(|&i| step[i] + 1 < GRID.len() && fa.iter().any(|e| e.word == words[i]))
                    .collect();
                if firing.is_empty() {
                    break;
                }
                firing.iter().for_each(|&i| step[i] += 1);
                (hits, fa) = try_steps(&step);
            }
        }
    }
    let chosen = thresholds(&step);
    let p = measure(model, keyword, no_command, per_word(&chosen, sustain));
    operating_point(per_hour, chosen, sustain, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(word: &str, start: f64, end: f64) -> Event {
        Event {
            word: word.into(),
            start,
            end,
            score: 0.9,
            emitted: end,
        }
    }

    #[test]
    fn events_are_matched_once_to_the_word_they_overlap() {
        let words = vec![
            Placed {
                word: "yes".into(),
                start: 2.0,
                end: 3.0,
            },
            Placed {
                word: "no".into(),
                start: 5.0,
                end: 6.0,
            },
        ];
        let events = [
            ev("yes", 2.2, 2.8),
            ev("yes", 2.5, 2.9), // a second event on the same word: an extra alarm
            ev("go", 5.1, 5.6),  // wrong word
            ev("up", 8.0, 8.5),  // between words
        ];
        assert_eq!(score_keywords(&events, &words), (1, 2, 1));
        assert_eq!(score_keywords(&[ev("no", 4.8, 5.2)], &words), (1, 0, 0));
        assert_eq!(score_keywords(&[ev("no", 3.4, 4.6)], &words), (0, 0, 1));
        // Per word, in the labels' order; "up" was never said.
        let labels = ["up", "no", "yes"].map(String::from);
        let hits = |word: &str, found, said| WordHits {
            word: word.into(),
            found,
            said,
        };
        assert_eq!(
            hits_per_word(&events, &words, &labels),
            [hits("no", 0, 1), hits("yes", 1, 1)]
        );
    }

    #[test]
    fn a_false_alarm_is_put_on_what_it_overlaps_most() {
        let said = [
            Placed {
                word: "dog".into(),
                start: 1.0,
                end: 1.6,
            },
            Placed {
                word: "the train leaves".into(),
                start: 1.7,
                end: 4.0,
            },
        ];
        let causes = false_alarm_causes(
            &[ev("down", 1.2, 1.8), ev("go", 1.5, 2.5), ev("up", 5.0, 5.5)],
            &said,
        );
        let on: Vec<Option<&str>> = causes.iter().map(|c| c.said.as_deref()).collect();
        assert_eq!(on, [Some("dog"), Some("the train leaves"), None]);
        assert_eq!(causes[0].word, "down");
    }

    #[test]
    fn streams_are_reproducible_and_hold_their_words() {
        let clip = |f: f32| (0..16000).map(|i| (i as f32 * f).sin() * 0.3).collect();
        let m = Material {
            keywords: vec![("yes".into(), clip(0.05)), ("no".into(), clip(0.07))],
            others: vec![("bed".into(), clip(0.03))],
            sentences: vec![("a sentence".into(), clip(0.02))],
            noise: vec![
                (0..50_000)
                    .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5)
                    .collect(),
            ],
        };
        let a = keyword_stream(&m, 0.5, 16000, 3);
        let b = keyword_stream(&m, 0.5, 16000, 3);
        assert_eq!(a.samples, b.samples);
        assert!(a.seconds() >= 30.0 && a.seconds() < 40.0, "{}", a.seconds());
        let n = a.words.len();
        assert!(n >= 8, "{n} words");
        for w in a.words.windows(2) {
            assert!(w[1].start >= w[0].end + 1.0);
        }
        let c = no_command_stream(&m, 0.5, 16000, 3);
        assert!(c.words.is_empty() && c.seconds() >= 30.0);
        assert!(c.said.iter().any(|p| p.word == "bed"));
        assert!(c.said.iter().any(|p| p.word == "a sentence"));
        for p in c.said.windows(2) {
            assert!(p[1].start >= p[0].end);
        }
        assert_ne!(no_command_stream(&m, 0.5, 16000, 4).samples, c.samples);
    }
}
