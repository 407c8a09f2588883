//! Few-shot retraining: new words from a handful of recordings, old words kept.
//!
//! The trained spiking layers stay frozen; readout rows for the new words (a linear map
//! into leaky integrators, averaged over time) are fitted next to the old words' rows,
//! which stay as they were (`readout_fit`: softmax regression on time-weighted spike
//! counts, no burn graph, seconds). The fit sees heavily augmented copies of the
//! examples with replayed old classes, unknown words and noise, so the new words do not
//! fire on everything; a bias guard then keeps them from taking over old words. In an
//! ensemble every network gets its own rows, all fitted together so that the members'
//! mean (what inference decides on) fits; reports and the guard use that mean too.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::augment::{self, AugmentConfig};
use crate::audio::{fit_length, load_wav};
use crate::config::{SILENCE, UNKNOWN};
use crate::data::{Dataset, SplitRule, label_index};
use crate::features::{MelFrame, with_mel_frame};
use crate::model::Model;
use crate::snn::Readout;
use crate::util::Rng;
use crate::util::parallel_map;

use super::readout_fit::{FeatureSets, Sample, features, fit_readouts, guard_old_classes, predict};
use super::replay_pick::{Caps, pick};
use crate::replay::{Part, ReplayStore};

#[derive(Debug, Clone)]
pub struct RetrainOptions {
    pub data: Vec<PathBuf>,
    /// Speech Commands folder for replay of old classes, unknown words and noise.
    pub replay: Option<PathBuf>,
    pub replace: bool,
    /// Augmented copies of each new example per epoch of features.
    pub copies: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Extra examples (e.g. synthetic speech) for the new words, training only.
    pub extra: Vec<PathBuf>,
    /// Then fine-tune the spiking layers too (burn, low learning rate) for this many
    /// epochs over the same examples and replay; 0 keeps them frozen.
    pub finetune_epochs: usize,
    /// Largest share of held-out old-class clips (Speech Commands validation speakers) the
    /// new words may take over; the new words' biases are lowered until this holds.
    pub max_old_drop: f64,
    /// Vocal-tract-length perturbation of every augmented copy (α within 1 ± vtlp): one
    /// speaker's formants moved as other speakers' are.
    pub vtlp: f32,
}

/// A user's example: samples at the model rate, word and speaker.
#[derive(Debug, Clone)]
pub struct Example {
    pub word: String,
    pub speaker: String,
    pub samples: Vec<f32>,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrainReport {
    pub labels: Vec<String>,
    pub new_words: Vec<String>,
    pub examples_per_word: BTreeMap<String, usize>,
    /// Held-out accuracy on the new words (by speaker when speakers are known).
    pub validation_accuracy: Option<f64>,
    pub validation_n: usize,
    pub validation_by: String,
    /// The user's examples the saved model is fitted on: all of them (the held-out ones
    /// only stand apart for the measurement).
    pub fitted_examples: usize,
    /// Held-out accuracy on replayed old classes (Speech Commands validation speakers).
    pub old_accuracy: Option<f64>,
    /// Share of held-out unknown words / noise clips taken for one of the new words.
    pub false_accept_unknown: Option<f64>,
    pub false_accept_noise: Option<f64>,
    /// Logit offset taken off the new words to keep the old classes (0: none needed).
    pub new_word_bias_shift: f32,
    /// What was replayed, from where.
    pub replay: String,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// Speaker id from a file name: `<spk>_nohash_<n>` (Speech Commands), `<digit>_<spk>_<n>`
/// (FSDD), else the file stem (each file its own speaker).
pub fn speaker_from_name(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    if let Some((spk, _)) = stem.split_once("_nohash_") {
        return spk.to_string();
    }
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() == 3 && parts[2].chars().all(|c| c.is_ascii_digit()) {
        return parts[1].to_string();
    }
    stem.to_string()
}

/// Reads `<dir>/<word>/*.wav` folders; unreadable files and silent clips are reported.
pub fn load_examples(
    dirs: &[PathBuf],
    rate: u32,
    warnings: &mut Vec<String>,
) -> Result<Vec<Example>> {
    let mut files = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let mut words: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        words.sort();
        for w in words {
            let word = w.file_name().unwrap().to_string_lossy().to_string();
            if word.starts_with('_') || word.starts_with('.') {
                continue;
            }
            let mut wavs: Vec<PathBuf> = std::fs::read_dir(&w)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
                .collect();
            wavs.sort();
            files.extend(wavs.into_iter().map(|p| (word.clone(), p)));
        }
    }
    if files.is_empty() {
        bail!(
            "no examples: expected <folder>/<word>/*.wav under {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let len = rate as usize;
    let loaded = parallel_map(&files, |(w, p)| {
        load_wav(p, rate).map(|x| (w.clone(), p.clone(), x))
    });
    let mut out = Vec::new();
    for ((_, p), r) in files.iter().zip(loaded) {
        match r {
            Err(e) => warnings.push(format!("skipped {}: {e}", p.display())),
            Ok((word, p, x)) => {
                let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                if peak < 1e-3 {
                    warnings.push(format!(
                        "skipped {}: silent (peak {:.1e})",
                        p.display(),
                        peak
                    ));
                    continue;
                }
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                out.push(Example {
                    word,
                    speaker: speaker_from_name(&name),
                    samples: centre(&x, len),
                    file: p.display().to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        bail!("none of the {} example files could be used", files.len());
    }
    Ok(out)
}

/// Centres the loudest 1 s of a recording (recordings longer than a second are cropped
/// around their energy, shorter ones padded on both sides).
fn centre(x: &[f32], len: usize) -> Vec<f32> {
    if x.len() <= len {
        let pad = (len - x.len()) / 2;
        let mut v = vec![0.0; pad];
        v.extend_from_slice(x);
        v.resize(len, 0.0);
        return v;
    }
    let e: Vec<f32> = x.iter().map(|v| v * v).collect();
    let mut best = (0, 0f32);
    let mut acc: f32 = e[..len].iter().sum();
    for s in 0..=(x.len() - len) {
        if s > 0 {
            acc += e[s + len - 1] - e[s - 1];
        }
        if acc > best.1 {
            best = (s, acc);
        }
    }
    x[best.0..best.0 + len].to_vec()
}

/// Retrains `base` on the examples; returns the new model and the report. The steps:
/// labels → held-out examples → replay → fit and measure → fit on every example → report.
pub fn retrain(base: &Model, opts: &RetrainOptions) -> Result<(Model, RetrainReport)> {
    let t0 = std::time::Instant::now();
    let rate = base.config.features.sample_rate;
    let mut warnings = Vec::new();
    let examples = load_examples(&opts.data, rate, &mut warnings)?;
    let extra = if opts.extra.is_empty() {
        Vec::new()
    } else {
        load_examples(&opts.extra, rate, &mut warnings)?
    };
    let plan = LabelPlan::new(base, &examples, opts.replace)?;
    let per_word = examples_per_word(&examples, &mut warnings);
    warnings.extend(finetune_warning(base, opts));
    let widened = plan.widened(base);
    let sets = FeatureSets::of(&widened);
    let mut rng = Rng::new(opts.seed);
    let (held, validation_by) = hold_out(&examples, &mut rng);
    let (replay, replay_source) = choose_replay(base, opts, &plan, &mut rng, &mut warnings)?;
    let aug = AugmentConfig {
        noise_prob: if replay.noise.is_empty() { 0.0 } else { 0.7 },
        vtlp: opts.vtlp,
        ..AugmentConfig::default()
    };
    let inputs = FitInputs {
        widened: &widened,
        plan: &plan,
        sets: &sets,
        replay: &replay,
        aug: &aug,
        opts,
    };
    let (model, m, fitted) =
        inputs.fit_and_measure(&examples, &held, &extra, &mut rng, &mut warnings)?;
    let report = RetrainReport {
        labels: plan.labels.clone(),
        new_words: plan.new_words.clone(),
        examples_per_word: per_word,
        validation_accuracy: m.new,
        validation_n: held.iter().filter(|h| **h).count(),
        fitted_examples: fitted,
        validation_by,
        old_accuracy: m.old,
        false_accept_unknown: m.unknown,
        false_accept_noise: m.noise,
        new_word_bias_shift: m.shift,
        replay: format!(
            "{} clips and {} noise recordings, {replay_source}",
            replay.train.len() + replay.val.len(),
            replay.noise.len()
        ),
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let mut model = model;
    model.training = training_record(base, &report);
    Ok((model, report))
}

/// What the new words' rows are fitted from.
struct FitInputs<'a> {
    /// The base with rows for the new words (their weights not fitted yet).
    widened: &'a Model,
    plan: &'a LabelPlan,
    sets: &'a FeatureSets,
    replay: &'a Replay,
    aug: &'a AugmentConfig,
    opts: &'a RetrainOptions,
}

impl FitInputs<'_> {
    /// The new words measured on a fit without their `held` out examples, then the model
    /// kept fitted on all of them (a user's few recordings are too few to waste), the
    /// clips already heard reused; with how many of the examples it is fitted on.
    fn fit_and_measure(
        &self,
        examples: &[Example],
        held: &[bool],
        extra: &[Example],
        rng: &mut Rng,
        warnings: &mut Vec<String>,
    ) -> Result<(Model, Measured, usize)> {
        let (plan, opts) = (self.plan, self.opts);
        let held_out: Vec<&Example> = examples
            .iter()
            .zip(held)
            .filter_map(|(e, h)| h.then_some(e))
            .collect();
        let mut jobs = fit_jobs(examples, held, extra, self.replay, plan, opts.copies, rng);
        let mut samples = self.samples(&jobs);
        let mut model = self.fit(&jobs, &samples, rng)?;
        let replay_val = replay_samples(&model, self.sets, self.replay);
        let m = measure(
            &mut model,
            self.sets,
            &held_out,
            &replay_val,
            plan,
            opts,
            warnings,
        );
        if held_out.is_empty() {
            return Ok((model, m, recorded_in(&jobs, examples)));
        }
        let more = copies_of(held_out.iter().copied(), plan, opts.copies, rng);
        samples.extend(self.samples(&more));
        jobs.extend(more);
        let mut model = self.fit(&jobs, &samples, rng)?;
        // Frozen layers hear the replay as they did; fine-tuned ones hear it anew.
        let replay_val = match opts.finetune_epochs {
            0 => replay_val,
            _ => replay_samples(&model, self.sets, self.replay),
        };
        let kept = measure(
            &mut model,
            self.sets,
            &[],
            &replay_val,
            plan,
            opts,
            &mut Vec::new(),
        );
        let fitted = recorded_in(&jobs, examples);
        Ok((model, Measured { new: m.new, ..kept }, fitted))
    }

    /// The jobs' clips as the base's frozen layers hear them.
    fn samples(&self, jobs: &[Job]) -> Vec<Sample> {
        samples_of(self.widened, self.sets, jobs, &self.replay.noise, self.aug)
    }

    /// The base widened by the new words, their rows fitted on `jobs` and their `samples`.
    fn fit(&self, jobs: &[Job], samples: &[Sample], rng: &mut Rng) -> Result<Model> {
        let mut model = self.widened.clone();
        fit(
            &mut model,
            self.sets,
            jobs,
            samples,
            &self.replay.noise,
            self.aug,
            self.opts,
            self.plan,
            rng,
        )?;
        Ok(model)
    }
}

/// The old words' replay: a folder given, else the clips stored in the model file, else none
/// (with a warning). Returns it with a description of its source.
fn choose_replay(
    base: &Model,
    opts: &RetrainOptions,
    plan: &LabelPlan,
    rng: &mut Rng,
    warnings: &mut Vec<String>,
) -> Result<(Replay, String)> {
    let rate = base.config.features.sample_rate;
    Ok(match (&opts.replay, &base.replay) {
        (Some(dir), _) => (
            Replay::load(base, dir, plan, rng)?,
            dir.display().to_string(),
        ),
        (None, Some(store)) => (
            Replay::from_store(store, plan, rate, rng),
            "stored in the model file".to_string(),
        ),
        (None, None) => {
            warnings.push("no replay data (none in the model file, no Speech Commands folder): old words may drift and new words may fire on noise; pass --replay DIR or set SPIKEWORD_DATA".into());
            (Replay::default(), "none".to_string())
        }
    })
}

/// The retrained model's training record: where it came from and what retraining did.
fn training_record(base: &Model, report: &RetrainReport) -> serde_json::Value {
    serde_json::json!({
        "retrained_from": base.training.get("date").cloned().unwrap_or_default(),
        "base_test_accuracy": base.training.get("test_accuracy").cloned().unwrap_or_default(),
        "split_rule": base.training.get("split_rule").cloned().unwrap_or_default(),
        "retrain": report,
        "date": crate::util::today_utc(),
    })
}

/// The labels before and after retraining.
struct LabelPlan {
    old: Vec<String>,
    new_words: Vec<String>,
    labels: Vec<String>,
}

impl LabelPlan {
    /// Old + new words, or (with `replace`) the new words, `_silence_` and `_unknown_`.
    fn new(base: &Model, examples: &[Example], replace: bool) -> Result<LabelPlan> {
        let new_words: Vec<String> = examples
            .iter()
            .map(|e| e.word.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let old = base.labels().to_vec();
        if let Some(w) = new_words.iter().find(|w| !replace && old.contains(w)) {
            bail!(
                "word '{w}' is already a label of the base model ({}); rename its folder or use --replace",
                old.join(" ")
            );
        }
        let labels = if replace {
            let specials = [SILENCE.to_string(), UNKNOWN.to_string()];
            new_words.iter().cloned().chain(specials).collect()
        } else {
            old.iter().chain(&new_words).cloned().collect()
        };
        Ok(LabelPlan {
            old,
            new_words,
            labels,
        })
    }

    /// The base's networks with each readout widened (old rows kept) or replaced.
    fn widened(&self, base: &Model) -> Model {
        let mut model = base.clone();
        model.config.labels = self.labels.clone();
        // Thresholds calibrated for the old words and readout no longer hold.
        model.config.operating_points.clear();
        for net in &mut model.net.members {
            net.readout = widened_readout(&net.readout, &self.old, &self.labels);
        }
        model
    }

    fn index(&self, word: &str) -> usize {
        self.labels
            .iter()
            .position(|l| l == word)
            .expect("word is a label")
    }

    fn new_indices(&self) -> HashSet<usize> {
        self.new_words.iter().map(|w| self.index(w)).collect()
    }
}

/// Fine-tuning under a jointly fitted base readout costs the old words (measured).
fn finetune_warning(base: &Model, opts: &RetrainOptions) -> Option<String> {
    let joint = base.training["joint_readout"]["kept"].as_bool() == Some(true);
    (opts.finetune_epochs > 0 && joint && !opts.replace).then(|| {
        "--finetune retunes the spiking layers under the base's jointly fitted readout, which then \
         no longer matches them: the old words lose more (bundled model: ~6 points against ~1-2 without)"
            .into()
    })
}

/// Examples per word, with warnings where there are too few to learn or to validate.
fn examples_per_word(examples: &[Example], warnings: &mut Vec<String>) -> BTreeMap<String, usize> {
    let mut per_word: BTreeMap<String, usize> = BTreeMap::new();
    for e in examples {
        *per_word.entry(e.word.clone()).or_insert(0) += 1;
    }
    for (w, n) in &per_word {
        if *n == 1 {
            warnings.push(format!("'{w}' has a single example: no validation possible and accuracy will be poor; record 5-10"));
        }
    }
    let few: Vec<String> = per_word
        .iter()
        .filter(|(_, n)| (2..5).contains(*n))
        .map(|(w, n)| format!("{w} ({n})"))
        .collect();
    if !few.is_empty() {
        warnings.push(format!(
            "few examples for {}: 5-10 per word work much better",
            few.join(", ")
        ));
    }
    per_word
}

/// Which examples are held out for validation: one speaker when speakers are known,
/// else one in five of each word's (once it has three); and how that was chosen.
fn hold_out(examples: &[Example], rng: &mut Rng) -> (Vec<bool>, String) {
    let speakers: HashSet<&str> = examples.iter().map(|e| e.speaker.as_str()).collect();
    if speakers.len() >= 2 && speakers.len() < examples.len() {
        let mut spk: Vec<&str> = speakers.into_iter().collect();
        spk.sort();
        let pick = spk[rng.below(spk.len())].to_string();
        let held = examples.iter().map(|e| e.speaker == pick).collect();
        return (held, format!("held-out speaker '{pick}'"));
    }
    let mut held = vec![false; examples.len()];
    let mut idx_by_word: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        idx_by_word.entry(&e.word).or_default().push(i);
    }
    for v in idx_by_word.values_mut() {
        rng.shuffle(v);
        let k = if v.len() >= 3 {
            (v.len() / 5).max(1)
        } else {
            0
        };
        for &i in v.iter().take(k) {
            held[i] = true;
        }
    }
    (held, "20 % of the examples of each word".into())
}

/// What a replayed validation clip stands for in the report.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplayKind {
    Old,
    Unknown,
    Noise,
}

/// Replayed Speech Commands material: old classes, unknown words and noise, from the
/// training speakers (and training noise) for fitting, from the validation speakers
/// (and noise held apart from the training noise) for the report.
#[derive(Default)]
struct Replay {
    train: Vec<(Vec<f32>, usize)>,
    val: Vec<(Vec<f32>, usize, ReplayKind)>,
    /// Training noise: augmentation and `_silence_` clips to fit on.
    noise: Vec<Vec<f32>>,
}

impl Replay {
    /// Replay picked from a Speech Commands folder (`Caps::RETRAIN`).
    fn load(base: &Model, dir: &Path, plan: &LabelPlan, rng: &mut Rng) -> Result<Replay> {
        let rate = base.config.features.sample_rate;
        let rule: SplitRule = serde_json::from_value(base.training["split_rule"].clone())
            .map_err(|_| {
                anyhow::anyhow!("the base model records no speaker split rule, so its validation speakers for replay are unknown")
            })?;
        let ds =
            Dataset::scan(dir, &rule).with_context(|| format!("--replay {}", dir.display()))?;
        let clips = pick(
            &ds,
            &plan.labels,
            &plan.new_words,
            rate,
            &Caps::RETRAIN,
            rng,
        );
        let store = ReplayStore::from_clips(rate, rate, clips).map_err(anyhow::Error::msg)?;
        Ok(Replay::from_store(&store, plan, rate, rng))
    }

    /// The replay of a store (a folder's pick, or what a model file carries): its words
    /// as classes of the new labels (not the new words), its noise, and `_silence_`
    /// clips cut from that noise.
    fn from_store(store: &ReplayStore, plan: &LabelPlan, rate: u32, rng: &mut Rng) -> Replay {
        let noise: Vec<Vec<f32>> = store
            .part_at(Part::Noise, rate)
            .into_iter()
            .map(|(_, x)| x)
            .collect();
        let noise_val: Vec<Vec<f32>> = store
            .part_at(Part::NoiseValidation, rate)
            .into_iter()
            .map(|(_, x)| x)
            .collect();
        let unk = plan.labels.iter().position(|l| l == UNKNOWN);
        let class = |w: &str| {
            (!plan.new_words.iter().any(|n| n == w))
                .then(|| label_index(&plan.labels, w))
                .flatten()
        };
        let mut replay = Replay::default();
        for (w, x) in store.part_at(Part::Train, rate) {
            if let Some(l) = class(w) {
                replay.train.push((fit_length(&x, rate as usize), l));
            }
        }
        for (w, x) in store.part_at(Part::Validation, rate) {
            if let Some(l) = class(w) {
                let kind = if Some(l) == unk {
                    ReplayKind::Unknown
                } else {
                    ReplayKind::Old
                };
                replay.val.push((fit_length(&x, rate as usize), l, kind));
            }
        }
        if let Some(si) = plan.labels.iter().position(|l| l == SILENCE) {
            for _ in 0..REPLAY_SILENCE {
                let x = augment::silence_clip(&noise, rate as usize, rng);
                replay.train.push((x, si));
            }
            for _ in 0..REPLAY_SILENCE_VAL {
                let x = augment::silence_clip(&noise_val, rate as usize, rng);
                replay.val.push((x, si, ReplayKind::Noise));
            }
        }
        replay.noise = noise;
        replay
    }
}

/// `_silence_` clips cut from the replay's noise, to fit on and to report on.
const REPLAY_SILENCE: usize = 60;
const REPLAY_SILENCE_VAL: usize = 20;

/// A clip to fit on: its samples (borrowed: copies of one example share them), class,
/// and augmentation seed (0 = as recorded).
type Job<'a> = (&'a [f32], usize, u64);

/// Clips to fit on: copies of each example not held out, fewer of the extra (synthetic)
/// ones, and the replay.
fn fit_jobs<'a>(
    examples: &'a [Example],
    held: &[bool],
    extra: &'a [Example],
    replay: &'a Replay,
    plan: &LabelPlan,
    copies: usize,
    rng: &mut Rng,
) -> Vec<Job<'a>> {
    let kept = examples
        .iter()
        .zip(held)
        .filter(|(_, h)| !**h)
        .map(|(e, _)| e);
    let mut jobs = copies_of(kept, plan, copies, rng);
    let synthetic = extra.iter().filter(|e| plan.new_words.contains(&e.word));
    jobs.extend(copies_of(synthetic, plan, copies / 4, rng));
    for (x, l) in &replay.train {
        jobs.push((x.as_slice(), *l, rng.next_u64()));
    }
    jobs
}

/// How many of the user's `examples` the jobs fit on (each one's copy as recorded).
fn recorded_in(jobs: &[Job], examples: &[Example]) -> usize {
    let recorded = |e: &Example| {
        jobs.iter()
            .any(|(x, _, seed)| *seed == 0 && std::ptr::eq(*x, e.samples.as_slice()))
    };
    examples.iter().filter(|e| recorded(e)).count()
}

/// `copies` of each example (at least one): the first as recorded, the rest augmented.
fn copies_of<'a>(
    examples: impl Iterator<Item = &'a Example>,
    plan: &LabelPlan,
    copies: usize,
    rng: &mut Rng,
) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for e in examples {
        for k in 0..copies.max(1) {
            let seed = if k == 0 { 0 } else { rng.next_u64() };
            jobs.push((e.samples.as_slice(), plan.index(&e.word), seed));
        }
    }
    jobs
}

/// Each job's clip (augmented unless its seed is 0) as the frozen spiking layers of
/// `frozen` hear it.
fn samples_of(
    frozen: &Model,
    sets: &FeatureSets,
    jobs: &[Job],
    noise: &[Vec<f32>],
    aug: &AugmentConfig,
) -> Vec<Sample> {
    let rate = frozen.config.features.sample_rate;
    parallel_map(jobs, |(x, l, seed)| {
        let y = if *seed == 0 {
            x.to_vec()
        } else {
            augment::augment_wave(x, noise, aug, rate, &mut Rng::new(*seed))
        };
        heard(frozen, sets, &y, *l)
    })
}

/// Fits the readout rows (old words' rows stay unless replaced or fine-tuned) on
/// the jobs' `samples`, then fine-tunes if asked.
#[allow(clippy::too_many_arguments)]
fn fit(
    model: &mut Model,
    sets: &FeatureSets,
    jobs: &[Job],
    samples: &[Sample],
    noise: &[Vec<f32>],
    aug: &AugmentConfig,
    opts: &RetrainOptions,
    plan: &LabelPlan,
    rng: &mut Rng,
) -> Result<()> {
    // Only the new rows are fitted (with the old classes and the replay as the
    // competition), so old-vs-old decisions stay the base's.
    let trainable: Vec<bool> = plan
        .labels
        .iter()
        .map(|l| opts.replace || opts.finetune_epochs > 0 || !plan.old.contains(l))
        .collect();
    fit_readouts(model, sets, &trainable, samples, opts.epochs, true, rng);
    if opts.finetune_epochs > 0 {
        finetune(model, jobs, noise, aug, opts.finetune_epochs, rng)?;
    }
    Ok(())
}

/// Held-out figures of a retrained model (after the old-word guard).
struct Measured {
    new: Option<f64>,
    old: Option<f64>,
    unknown: Option<f64>,
    noise: Option<f64>,
    shift: f32,
}

/// The replay's held-apart clips as `model`'s spiking layers hear them.
fn replay_samples(model: &Model, sets: &FeatureSets, replay: &Replay) -> Vec<(ReplayKind, Sample)> {
    parallel_map(&replay.val, |(x, l, k)| (*k, heard(model, sets, x, *l)))
}

/// One clip as `model`'s spiking layers hear it.
fn heard(model: &Model, sets: &FeatureSets, x: &[f32], label: usize) -> Sample {
    Sample {
        feats: with_mel_frame(&model.config.features, |mf| features(model, mf, x, sets)),
        label,
    }
}

/// Lowers the new words until the old words hold (unless replacing), then measures on
/// the held-out examples and the replay's held-apart clips (`replay_samples`), and warns
/// about confusable new words.
fn measure(
    model: &mut Model,
    sets: &FeatureSets,
    held_out: &[&Example],
    replay_val: &[(ReplayKind, Sample)],
    plan: &LabelPlan,
    opts: &RetrainOptions,
    warnings: &mut Vec<String>,
) -> Measured {
    let new_val: Vec<Sample> = parallel_map(held_out, |e| {
        heard(model, sets, &e.samples, plan.index(&e.word))
    });
    let new_idx = plan.new_indices();
    let shift = if opts.replace {
        0.0
    } else {
        let samples: Vec<&Sample> = replay_val.iter().map(|(_, s)| s).collect();
        guard_old_classes(model, sets, &samples, &new_idx, opts.max_old_drop)
    };
    let model = &*model;
    let share = |v: &[&Sample], hit: &dyn Fn(&Sample, usize) -> bool| -> Option<f64> {
        (!v.is_empty()).then(|| {
            let k = v.iter().filter(|s| hit(s, predict(model, s, sets))).count();
            k as f64 / v.len() as f64
        })
    };
    let of_kind = |kind: ReplayKind| -> Vec<&Sample> {
        replay_val
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, s)| s)
            .collect()
    };
    let correct = |s: &Sample, p: usize| p == s.label;
    let taken = |_: &Sample, p: usize| new_idx.contains(&p);
    warn_confusable(model, sets, &new_val, plan, warnings);
    Measured {
        new: share(&new_val.iter().collect::<Vec<_>>(), &correct),
        old: share(&of_kind(ReplayKind::Old), &correct),
        unknown: share(&of_kind(ReplayKind::Unknown), &taken),
        noise: share(&of_kind(ReplayKind::Noise), &taken),
        shift,
    }
}

/// Warns when over a quarter of one new word's held-out examples are taken for another.
fn warn_confusable(
    model: &Model,
    sets: &FeatureSets,
    new_val: &[Sample],
    plan: &LabelPlan,
    warnings: &mut Vec<String>,
) {
    for a in &plan.new_words {
        let ia = plan.index(a);
        let mine: Vec<&Sample> = new_val.iter().filter(|s| s.label == ia).collect();
        for b in plan.new_words.iter().filter(|b| *b != a) {
            let ib = plan.index(b);
            let k = mine
                .iter()
                .filter(|s| predict(model, s, sets) == ib)
                .count();
            if !mine.is_empty() && k * 4 > mine.len() {
                warnings.push(format!(
                    "'{a}' is often taken for '{b}' ({k}/{} held-out examples): confusable words",
                    mine.len()
                ));
            }
        }
    }
}

/// A readout for `labels`: the rows of labels in `old` copied, new rows zero with the mean
/// leak (fitted afterwards).
fn widened_readout(r: &Readout, old: &[String], labels: &[String]) -> Readout {
    let n_cls = labels.len();
    let mean_beta = r.beta.iter().sum::<f32>() / r.beta.len() as f32;
    let mut readout = Readout {
        c_in: r.c_in,
        n_classes: n_cls,
        w: vec![0.0; r.c_in * n_cls],
        bias: vec![0.0; n_cls],
        beta: vec![mean_beta; n_cls],
    };
    for (c, l) in labels.iter().enumerate() {
        if let Some(oc) = old.iter().position(|x| x == l) {
            readout.beta[c] = r.beta[oc];
            readout.bias[c] = r.bias[oc];
            for i in 0..r.c_in {
                readout.w[i * n_cls + c] = r.w[i * r.n_classes + oc];
            }
        }
    }
    readout
}

/// Fine-tunes every parameter (spiking layers, leaks, thresholds, readout) at a low
/// learning rate with surrogate gradients, on the augmented examples and the replay;
/// each ensemble member on its own share of the batches, with its own optimiser.
fn finetune(
    model: &mut Model,
    jobs: &[Job],
    noise: &[Vec<f32>],
    aug: &AugmentConfig,
    epochs: usize,
    rng: &mut Rng,
) -> Result<()> {
    use burn::optim::{AdamConfig, GradientsParams, grad_clipping::GradientClippingConfig};
    use burn::tensor::{Device, Int, Tensor, TensorData};
    let dev = Device::flex().autodiff();
    // Fine-tuning keeps each member's leaks within what it was trained with.
    let leak_caps: Vec<f32> = model.net.members.iter().map(largest_leak).collect();
    let mut nets: Vec<_> = model
        .net
        .members
        .iter()
        .map(|n| {
            let optim = AdamConfig::new()
                .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
                .init();
            (crate::batch::net::TrainNet::from_network(n, &dev), optim)
        })
        .collect();
    let c = model
        .config
        .encoder
        .out_channels(model.config.features.n_mels);
    let frozen = model.clone();
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    for _ in 0..epochs {
        let batches = epoch_batches(&frozen, jobs, noise, aug, &mut order, rng);
        // Members learn apart, one thread each (burn's CPU backend keeps one core busy
        // per graph), each on its own share of the batches: the ensemble costs what one
        // network does, and different data keeps the members' errors apart.
        let n_members = nets.len();
        std::thread::scope(|s| {
            for (m, (tn, optim)) in nets.iter_mut().enumerate() {
                let (batches, dev, leak_cap) = (&batches, &dev, leak_caps[m]);
                s.spawn(move || {
                    for (xs, ys) in batches.iter().skip(m).step_by(n_members) {
                        let b = ys.len();
                        let t = xs.len() / (b * c);
                        let x: Tensor<3> =
                            Tensor::from_data(TensorData::new(xs.clone(), [b, c, t]), dev);
                        let y: Tensor<1, Int> =
                            Tensor::from_data(TensorData::new(ys.clone(), [b]), dev);
                        let f = tn.forward(x);
                        let l = crate::batch::net::loss(&f, y, 0.03, 4.0);
                        let grads = GradientsParams::from_grads(l.backward(), &*tn);
                        *tn = optim.step(3e-4, tn.clone(), grads).clamp(leak_cap);
                    }
                });
            }
        });
    }
    for (m, (tn, _)) in model.net.members.iter_mut().zip(&nets) {
        *m = tn.to_network();
    }
    Ok(())
}

/// A network's largest membrane leak, within the training bounds.
fn largest_leak(n: &crate::snn::Network) -> f32 {
    n.layers
        .iter()
        .flat_map(|l| l.beta.iter().copied())
        .fold(crate::batch::net::BETA_MIN, f32::max)
        .min(crate::batch::net::BETA_MAX)
}

/// One epoch of shuffled, augmented batches of 32 (channels-first input, labels).
fn epoch_batches(
    frozen: &Model,
    jobs: &[Job],
    noise: &[Vec<f32>],
    aug: &AugmentConfig,
    order: &mut [usize],
    rng: &mut Rng,
) -> Vec<(Vec<f32>, Vec<i64>)> {
    let rate = frozen.config.features.sample_rate;
    let c = frozen
        .config
        .encoder
        .out_channels(frozen.config.features.n_mels);
    rng.shuffle(order);
    let seeds: Vec<(usize, u64)> = order.iter().map(|&i| (i, rng.next_u64())).collect();
    let inputs: Vec<Vec<f32>> = parallel_map(&seeds, |(i, seed)| {
        let (x, _, _) = &jobs[*i];
        let y = augment::augment_wave(x, noise, aug, rate, &mut Rng::new(*seed));
        let (enc, _) = frozen.encode(&mut MelFrame::new(&frozen.config.features), &y);
        crate::batch::net::channels_first(&enc, c)
    });
    seeds
        .chunks(32)
        .zip(inputs.chunks(32))
        .map(|(chunk, xs)| {
            (
                xs.concat(),
                chunk.iter().map(|(i, _)| jobs[*i].1 as i64).collect(),
            )
        })
        .collect()
}

/// Checks that writing `out` will not replace the base model.
pub fn check_out_path(base: &Path, out: &Path) -> Result<()> {
    let same = match (base.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        bail!(
            "--out {} is the base model: choose another file",
            out.display()
        );
    }
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakers_are_read_from_both_naming_schemes() {
        assert_eq!(speaker_from_name("7_jackson_32.wav"), "jackson");
        assert_eq!(speaker_from_name("0a7c2a8d_nohash_1.wav"), "0a7c2a8d");
        assert_eq!(speaker_from_name("take3.wav"), "take3");
    }

    #[test]
    fn centring_keeps_the_loud_part() {
        let mut x = vec![0.0; 40000];
        x[30000..31000].fill(0.5);
        let y = centre(&x, 16000);
        assert_eq!(y.len(), 16000);
        assert!(y.iter().filter(|v| **v == 0.5).count() == 1000);
        let z = centre(&[0.3; 4000], 16000);
        assert_eq!(z[6000], 0.3);
        assert_eq!(z[0], 0.0);
    }
}
