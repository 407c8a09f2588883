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
use super::readout_fit::{FeatureSets, ReadoutFit, Sample, features_in_context, predict};
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
}

impl Default for JointFitOptions {
    fn default() -> Self {
        JointFitOptions {
            epochs: 6,
            consistency: 0.3,
            lr: 0.002,
            seed: 1,
            shifted: 0,
        }
    }
}

pub fn fit_joint_readout(
    model: &mut Model,
    ds: &Dataset,
    opts: &JointFitOptions,
) -> Result<JointFitReport> {
    let rate = model.config.features.sample_rate;
    let labels = model.labels().to_vec();
    let (train, _) = load_labeled(ds, Some(Split::Train), &labels, rate);
    let (val, _) = load_labeled(ds, Some(Split::Validation), &labels, rate);
    if train.is_empty() || val.is_empty() {
        bail!("the joint readout needs training and validation clips; none found");
    }
    let noise = ds.noise_waves(Split::Train, rate);
    // Contexts a whole number of hops long, so the clip's frames are its own.
    let hop = model.config.features.hop_length;
    let half = (rate as usize / 2) / hop * hop;
    let mut rng = Rng::new(opts.seed);
    let mut jobs: Vec<(usize, Context)> = Vec::with_capacity(train.len() * 4);
    let mut groups: Vec<Vec<usize>> = Vec::with_capacity(train.len());
    for i in 0..train.len() {
        let first = jobs.len();
        jobs.push((i, Context::None));
        jobs.push((i, Context::Silence));
        if !noise.is_empty() {
            let file = rng.below(noise.len());
            jobs.push((
                i,
                Context::Noise {
                    file,
                    seed: rng.next_u64(),
                },
            ));
        }
        jobs.push((i, Context::Clip(rng.below(train.len()))));
        groups.push((first..jobs.len()).collect());
        // Moved windows are other windows, not the clip in a context: no consistency term.
        for _ in 0..if noise.is_empty() { 0 } else { opts.shifted } {
            let frames = (10 + rng.below(21)) as i32 * if rng.below(2) == 0 { -1 } else { 1 };
            groups.push(vec![jobs.len()]);
            jobs.push((
                i,
                Context::Shifted {
                    file: rng.below(noise.len()),
                    seed: rng.next_u64(),
                    frames,
                },
            ));
        }
    }
    let sets = FeatureSets::of(model);
    let frozen = model.clone();
    let feats = |context: &[f32], x: &[f32]| {
        with_mel_frame(&frozen.config.features, |mf| {
            features_in_context(&frozen, mf, context, x, &sets)
        })
    };
    let samples: Vec<Sample> = parallel_map(&jobs, |(i, ctx)| {
        let x = &train[*i].samples;
        let (context, window): (Vec<f32>, &[f32]) = match ctx {
            Context::None => (Vec::new(), x),
            Context::Silence => (vec![0.0; half], x),
            Context::Noise { file, seed } => {
                let mut r = Rng::new(*seed);
                let gain = r.range(0.1, 0.4);
                let n = noise_crop(&noise[*file], half, &mut r);
                (n.iter().map(|v| v * gain).collect(), x)
            }
            Context::Clip(j) => {
                let c = &train[*j].samples;
                (c[..c.len() / hop * hop].to_vec(), x)
            }
            Context::Shifted { file, seed, frames } => {
                // Noise, the clip, noise; the window ends `frames` hops off the clip's end.
                let mut r = Rng::new(*seed);
                let gain = r.range(0.1, 0.4);
                let pad = noise_crop(&noise[*file], 2 * half, &mut r);
                let mut s: Vec<f32> = pad[..half].iter().map(|v| v * gain).collect();
                s.extend_from_slice(x);
                s.extend(pad[half..].iter().map(|v| v * gain));
                let end = (half + x.len()).saturating_add_signed(*frames as isize * hop as isize);
                let start = end - x.len();
                let w = s.split_off(start);
                return Sample {
                    feats: feats(&s, &w[..x.len()]),
                    label: train[*i].label,
                };
            }
        };
        Sample {
            feats: feats(&context, window),
            label: train[*i].label,
        }
    });
    let val_samples: Vec<Sample> = parallel_map(&val, |a| Sample {
        feats: feats(&[], &a.samples),
        label: a.label,
    });
    let accuracy = |m: &Model| {
        let right = val_samples
            .iter()
            .filter(|s| predict(m, s, &sets) == s.label)
            .count();
        right as f64 / val_samples.len() as f64
    };
    let before = accuracy(model);
    let trainable = vec![true; labels.len()];
    let mut fit = ReadoutFit::new(model, &sets, &trainable, &samples, false);
    let lr0 = opts.lr;
    for e in 1..=opts.epochs {
        // Cosine decay: the last epochs settle instead of jumping between solutions.
        let phase = std::f32::consts::PI * (e - 1) as f32 / opts.epochs as f32;
        fit.lr = lr0 * 0.5 * (1.0 + phase.cos());
        fit.epoch_grouped(&samples, &groups, opts.consistency, &mut rng);
    }
    let mut fitted = model.clone();
    fit.apply(&mut fitted);
    let after = accuracy(&fitted);
    // Never worse than the members' own readouts on the validation speakers.
    let kept = after >= before;
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
    })
}
