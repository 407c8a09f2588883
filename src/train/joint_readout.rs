//! The readouts of an ensemble refitted together, with the spiking layers frozen. Each
//! member was trained alone, under heavy augmentation, so the mean of their readouts is
//! not the best readout of their spikes: a softmax regression of the members' mean on
//! the training speakers' clean clips is. Every clip is seen alone and inside a stream
//! (after digital silence, background noise and another clip), so the fit also prefers
//! readouts whose decision a context does not move (a consistency term pulls each
//! in-context decision towards the clip's alone). Kept only if the validation speakers
//! agree.

use anyhow::{Result, bail};
use serde::Serialize;

use super::augment::noise_crop;
use super::negatives::Negative;
use super::readout_fit::{FeatureSets, ReadoutFit, Sample, features_in_context, predict};
use crate::config::{SILENCE, UNKNOWN};
use crate::data::load_labeled;
use crate::data::{Dataset, Split};
use crate::features::with_mel_frame;
use crate::model::Model;
use crate::util::Rng;
use crate::util::parallel_map;

#[derive(Debug, Clone, Serialize)]
pub struct JointFitReport {
    /// Training samples: clips (with `_silence_` noise crops) × 4 contexts, plus the moved
    /// windows.
    pub samples: usize,
    pub epochs: usize,
    pub consistency: f32,
    /// Windows per clip moved off it (`JointFitOptions::shifted`).
    pub shifted: usize,
    /// Whether the fitted readouts replaced the members' own (only when they are at least
    /// as accurate on the validation speakers).
    pub kept: bool,
    pub validation_clips: usize,
    pub validation_before: f64,
    pub validation_after: f64,
    /// Running-speech windows learnt as `_unknown_` (`negatives`), and the share of them
    /// the fitted readouts call `_unknown_` or `_silence_`.
    pub negatives: usize,
    pub negatives_rejected_before: f64,
    pub negatives_rejected_after: f64,
}

/// What comes before a training clip.
enum Context {
    None,
    Silence,
    Noise {
        file: usize,
        seed: u64,
    },
    Clip(usize),
    /// The clip inside background noise, the 1 s window moved `frames` hops from it (the
    /// windows a detector also scores: it takes the peak over all of them).
    Shifted {
        file: usize,
        seed: u64,
        frames: i32,
    },
}

#[derive(Debug, Clone)]
pub struct JointFitOptions {
    pub epochs: usize,
    /// Weight of the in-context vs alone log-probability distance (see
    /// `ReadoutFit::epoch_grouped`).
    pub consistency: f32,
    /// Adam's first step size, decayed to 0 over the epochs.
    pub lr: f32,
    pub seed: u64,
    /// Windows per clip moved 100–300 ms off it (inside noise), labelled as the clip: a
    /// detector scores every window, so the readout should not call part of another word
    /// a keyword.
    pub shifted: usize,
    /// Validation accuracy (a share) the fit may lose and still be kept: learning running
    /// speech as `_unknown_` can cost a clip or two of the validation words.
    pub tolerance: f64,
    /// Validation accuracy the tolerance is measured from (default: the readouts' before
    /// this fit), so that fits in a row cannot each lose the tolerance again.
    pub reference: Option<f64>,
}

impl Default for JointFitOptions {
    fn default() -> Self {
        JointFitOptions {
            epochs: 6,
            consistency: 0.3,
            lr: 0.002,
            seed: 1,
            shifted: 0,
            tolerance: 0.0,
            reference: None,
        }
    }
}

/// Refits all members' readouts together (spiking layers frozen) on the training
/// speakers, each clip alone and in contexts, and on `negatives` (running speech of the
/// training speakers, as `_unknown_`); keeps the fit only if the validation speakers'
/// accuracy does not drop by more than `opts.tolerance`.
pub fn fit_joint_readout(
    model: &mut Model,
    ds: &Dataset,
    opts: &JointFitOptions,
    negatives: &[Negative],
) -> Result<JointFitReport> {
    let rate = model.config.features.sample_rate;
    let labels = model.labels().to_vec();
    let (train, _) = load_labeled(ds, Some(Split::Train), &labels, rate);
    let (val, _) = load_labeled(ds, Some(Split::Validation), &labels, rate);
    if train.is_empty() || val.is_empty() {
        bail!("the joint readout needs training and validation clips; none found");
    }
    let noise = ds.noise_waves(Split::Train, rate);
    let mut rng = Rng::new(opts.seed);
    let unknown = labels.iter().position(|l| l == UNKNOWN);
    if unknown.is_none() && !negatives.is_empty() {
        bail!("running-speech negatives need an `{UNKNOWN}` class");
    }
    let (jobs, mut groups) = context_jobs(train.len(), noise.len(), opts.shifted, &mut rng);
    let sets = FeatureSets::of(model);
    let views = Views {
        model: &model.clone(),
        sets: &sets,
        train: &train,
        noise: &noise,
    };
    let mut samples: Vec<Sample> = parallel_map(&jobs, |(i, ctx)| views.sample(*i, ctx));
    let n_clips = samples.len();
    if let Some(unknown) = unknown.filter(|_| !negatives.is_empty()) {
        samples.extend(parallel_map(negatives, |n| Sample {
            feats: views.feats(&n.context, &n.window),
            label: unknown,
        }));
        groups.extend((n_clips..samples.len()).map(|i| vec![i]));
    }
    let val_samples: Vec<Sample> = parallel_map(&val, |a| Sample {
        feats: views.feats(&[], &a.samples),
        label: a.label,
    });
    let rejected = |m: &Model| rejected_share(m, &samples[n_clips..], &sets, &labels);
    let accuracy = |m: &Model| accuracy_on(m, &val_samples, &sets);
    let (before, rejected_before) = (accuracy(model), rejected(model));
    let fitted = fit_readouts(model, &sets, &samples, &groups, opts, &mut rng);
    let after = accuracy(&fitted);
    // Never worse on the validation speakers than the readouts before, but for the
    // tolerance allowed.
    let kept = after >= opts.reference.unwrap_or(before) - opts.tolerance;
    let rejected_after = rejected(if kept { &fitted } else { model });
    if kept {
        *model = fitted;
    }
    Ok(JointFitReport {
        samples: samples.len(),
        epochs: opts.epochs,
        consistency: opts.consistency,
        shifted: opts.shifted,
        kept,
        validation_clips: val_samples.len(),
        validation_before: before,
        validation_after: after,
        negatives: negatives.len(),
        negatives_rejected_before: rejected_before,
        negatives_rejected_after: rejected_after,
    })
}

/// The share of running-speech windows the model calls `_unknown_` or `_silence_`.
fn rejected_share(m: &Model, negatives: &[Sample], sets: &FeatureSets, labels: &[String]) -> f64 {
    let not_word = |c: usize| labels[c] == UNKNOWN || labels[c] == SILENCE;
    let n = negatives
        .iter()
        .filter(|s| not_word(predict(m, s, sets)))
        .count();
    n as f64 / negatives.len().max(1) as f64
}

/// The share of samples the model labels right.
fn accuracy_on(m: &Model, samples: &[Sample], sets: &FeatureSets) -> f64 {
    let right = samples
        .iter()
        .filter(|s| predict(m, s, sets) == s.label)
        .count();
    right as f64 / samples.len().max(1) as f64
}

/// Fits every readout together on the samples; returns a copy of the model carrying them.
fn fit_readouts(
    model: &Model,
    sets: &FeatureSets,
    samples: &[Sample],
    groups: &[Vec<usize>],
    opts: &JointFitOptions,
    rng: &mut Rng,
) -> Model {
    let trainable = vec![true; model.labels().len()];
    let mut fit = ReadoutFit::new(model, sets, &trainable, samples, false);
    for e in 1..=opts.epochs {
        // Cosine decay: the last epochs settle instead of jumping between solutions.
        let phase = std::f32::consts::PI * (e - 1) as f32 / opts.epochs as f32;
        fit.lr = opts.lr * 0.5 * (1.0 + phase.cos());
        fit.epoch_grouped(samples, groups, opts.consistency, rng);
    }
    let mut fitted = model.clone();
    fit.apply(&mut fitted);
    fitted
}

/// Every training clip alone, after silence, noise and another clip (one consistency
/// group), plus `shifted` moved windows each a group of its own: moved windows are other
/// windows, not the clip in a context.
fn context_jobs(
    clips: usize,
    noises: usize,
    shifted: usize,
    rng: &mut Rng,
) -> (Vec<(usize, Context)>, Vec<Vec<usize>>) {
    let mut jobs: Vec<(usize, Context)> = Vec::with_capacity(clips * 4);
    let mut groups: Vec<Vec<usize>> = Vec::with_capacity(clips);
    for i in 0..clips {
        let first = jobs.len();
        jobs.push((i, Context::None));
        jobs.push((i, Context::Silence));
        if noises > 0 {
            let file = rng.below(noises);
            let seed = rng.next_u64();
            jobs.push((i, Context::Noise { file, seed }));
        }
        jobs.push((i, Context::Clip(rng.below(clips))));
        groups.push((first..jobs.len()).collect());
        for _ in 0..if noises == 0 { 0 } else { shifted } {
            let frames = (10 + rng.below(21)) as i32 * if rng.below(2) == 0 { -1 } else { 1 };
            groups.push(vec![jobs.len()]);
            let (file, seed) = (rng.below(noises), rng.next_u64());
            jobs.push((i, Context::Shifted { file, seed, frames }));
        }
    }
    (jobs, groups)
}

/// What the frozen networks make of a training clip in a context.
struct Views<'a> {
    model: &'a Model,
    sets: &'a FeatureSets,
    train: &'a [crate::data::LabeledAudio],
    noise: &'a [Vec<f32>],
}

impl Views<'_> {
    fn feats(&self, context: &[f32], x: &[f32]) -> Vec<Vec<Vec<f32>>> {
        with_mel_frame(&self.model.config.features, |mf| {
            features_in_context(self.model, mf, context, x, self.sets)
        })
    }

    /// Contexts a whole number of hops long, so that the clip's frames are its own.
    fn half_second(&self) -> usize {
        let f = &self.model.config.features;
        (f.sample_rate as usize / 2) / f.hop_length * f.hop_length
    }

    fn noise(&self, file: usize, seed: u64, len: usize) -> Vec<f32> {
        let mut r = Rng::new(seed);
        let gain = r.range(0.1, 0.4);
        noise_crop(&self.noise[file], len, &mut r)
            .iter()
            .map(|v| v * gain)
            .collect()
    }

    fn sample(&self, i: usize, ctx: &Context) -> Sample {
        let x = &self.train[i].samples;
        let (half, hop) = (self.half_second(), self.model.config.features.hop_length);
        let feats = match ctx {
            Context::None => self.feats(&[], x),
            Context::Silence => self.feats(&vec![0.0; half], x),
            Context::Noise { file, seed } => self.feats(&self.noise(*file, *seed, half), x),
            Context::Clip(j) => {
                let c = &self.train[*j].samples;
                self.feats(&c[..c.len() / hop * hop], x)
            }
            Context::Shifted { file, seed, frames } => {
                // Noise, the clip, noise; the window ends `frames` hops off the clip's end.
                let pad = self.noise(*file, *seed, 2 * half);
                let mut s: Vec<f32> = pad[..half].to_vec();
                s.extend_from_slice(x);
                s.extend_from_slice(&pad[half..]);
                let end = (half + x.len()).saturating_add_signed(*frames as isize * hop as isize);
                let w = s.split_off(end - x.len());
                self.feats(&s, &w[..x.len()])
            }
        };
        Sample {
            feats,
            label: self.train[i].label,
        }
    }
}
