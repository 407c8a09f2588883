//! What one training step sees: the training clips in memory by class, their band
//! statistics, and each example as the network hears it (augmented, mixed with another
//! clip, after left context), labelled by the teachers on exactly that audio.

use anyhow::{Result, bail};

use super::augment::{self, AugmentConfig};
use super::distill::{Distiller, Embedder};
use crate::audio::{fit_length, load_wav};
use crate::config::{EncoderConfig, FeatureConfig, SILENCE};
use crate::data::{Dataset, Split, label_index};
use crate::encoding;
use crate::features::{MelFrame, Normalizer, log_mel_with};
use crate::util::{Rng, parallel_map};

/// Training clips in memory, grouped by class.
pub(super) struct TrainSet {
    pub(super) by_class: Vec<Vec<Vec<f32>>>,
    /// Word-head class of each clip of `by_class`.
    pub(super) word_of: Vec<Vec<usize>>,
    /// Word-head classes: the vocabulary, then "other" (excluded words), then silence.
    pub(super) words: Vec<String>,
    pub(super) noise: Vec<Vec<f32>>,
    pub(super) silence_class: Option<usize>,
}

impl TrainSet {
    /// The training split's clips (and the extra datasets') of `labels`, with the
    /// training noise; `word_head_exclude` words count as "other" for the word head.
    pub(super) fn load(
        ds: &Dataset,
        extra: &[Dataset],
        labels: &[String],
        rate: u32,
        word_head_exclude: &[String],
    ) -> Result<TrainSet> {
        let len = rate as usize;
        let clips: Vec<_> = ds
            .split(Split::Train)
            .chain(extra.iter().flat_map(|d| d.clips.iter()))
            .filter_map(|c| label_index(labels, &c.word).map(|l| (c.path.clone(), l, &c.word)))
            .collect();
        let mut words: Vec<String> = clips
            .iter()
            .map(|(_, _, w)| w.to_string())
            .filter(|w| !word_head_exclude.contains(w))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let other = words.len();
        words.extend(["_other_".to_string(), SILENCE.to_string()]);
        let loaded = parallel_map(&clips, |(p, l, w)| {
            let wi = words.iter().position(|x| x == *w).unwrap_or(other);
            load_wav(p, rate).map(|x| (fit_length(&x, len), *l, wi))
        });
        let mut by_class = vec![Vec::new(); labels.len()];
        let mut word_of = vec![Vec::new(); labels.len()];
        let mut bad = 0;
        for r in loaded {
            match r {
                Ok((x, l, wi)) => {
                    by_class[l].push(x);
                    word_of[l].push(wi);
                }
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            eprintln!("warning: {bad} unreadable training clips skipped");
        }
        let noise = ds.noise_waves(Split::Train, rate);
        let silence_class = labels.iter().position(|l| l == SILENCE);
        for (i, c) in by_class.iter().enumerate() {
            if c.is_empty() && Some(i) != silence_class {
                bail!("no training clips for class {}", labels[i]);
            }
        }
        Ok(TrainSet {
            by_class,
            word_of,
            words,
            noise,
            silence_class,
        })
    }
}

/// Per-band mean and std of log-mel over (a sample of) the training clips.
pub(super) fn band_stats(set: &TrainSet, cfg: &FeatureConfig) -> (Vec<f32>, Vec<f32>) {
    let mut mf = MelFrame::new(cfg);
    let n = cfg.n_mels;
    let (mut sum, mut sq, mut count) = (vec![0f64; n], vec![0f64; n], 0usize);
    for clips in &set.by_class {
        for x in clips.iter().take(200) {
            let m = log_mel_with(&mut mf, x);
            for f in m.data.chunks_exact(n) {
                for (i, v) in f.iter().enumerate() {
                    sum[i] += *v as f64;
                    sq[i] += (*v as f64).powi(2);
                }
                count += 1;
            }
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / count as f64) as f32).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| ((q / count as f64 - (*m as f64).powi(2)).max(1e-6)).sqrt() as f32)
        .collect();
    (mean, std)
}

/// One training example: network input `[C, T]` (flattened), word-head class, and the
/// teachers' soft targets and embedding vectors for the clip as heard (when distilling).
pub(super) struct Example {
    pub(super) x: Vec<f32>,
    pub(super) word: usize,
    pub(super) soft: Option<Vec<f32>>,
    pub(super) emb: Option<Vec<f32>>,
}

/// What an example is made of: the clips, the front end and its augmentation, the
/// normalisation, and the teachers that label the audio as heard.
pub(super) struct ExampleMaker<'a> {
    pub(super) set: &'a TrainSet,
    pub(super) features: &'a FeatureConfig,
    pub(super) augment: &'a AugmentConfig,
    pub(super) encoder: &'a EncoderConfig,
    /// Frames of left context before each clip.
    pub(super) context_frames: usize,
    pub(super) norm: &'a Normalizer,
    pub(super) distiller: Option<&'a Distiller>,
    pub(super) embedder: Option<&'a Embedder>,
}

impl ExampleMaker<'_> {
    /// One training example of `class`: the clip as heard, the teachers' targets for
    /// exactly that audio, then left context, features, SpecAugment and spike encoding.
    pub(super) fn make(&self, class: usize, mf: &mut MelFrame, rng: &mut Rng) -> Result<Example> {
        let (wave, word) = self.clip(class, rng);
        // The teacher hears the clip as the student does (its left context aside).
        let soft = match self.distiller {
            Some(d) => Some(d.targets(&wave)?),
            None => None,
        };
        let emb = match self.embedder {
            Some(e) => Some(e.targets(&wave)?),
            None => None,
        };
        let (wave, zero_state) = self.with_left_context(wave, rng);
        let mut mel = log_mel_with(mf, &wave);
        let n = mel.n_mels;
        for f in mel.data.chunks_exact_mut(n) {
            self.norm.apply(f);
        }
        if zero_state && self.context_frames > 0 {
            // Zero state: zero input frames, exactly what an isolated clip sees.
            let mut z = vec![0.0; self.context_frames * n];
            z.extend_from_slice(&mel.data);
            mel.data = z;
        }
        augment::spec_augment(&mut mel.data, n, self.augment, rng);
        let (enc, _) = encoding::encode_clip(self.encoder, &mel.data, n);
        Ok(Example {
            x: crate::batch::net::channels_first(&enc, self.encoder.out_channels(n)),
            word,
            soft,
            emb,
        })
    }

    /// The augmented 1 s clip of an example of `class` and its word-head class.
    fn clip(&self, class: usize, rng: &mut Rng) -> (Vec<f32>, usize) {
        let set = self.set;
        let len = self.features.sample_rate as usize;
        if Some(class) == set.silence_class {
            return (
                augment::silence_clip(&set.noise, len, rng),
                set.words.len() - 1,
            );
        }
        let pool = &set.by_class[class];
        let i = rng.below(pool.len());
        let mut wave = augment::augment_wave(
            &pool[i],
            &set.noise,
            self.augment,
            self.features.sample_rate,
            rng,
        );
        if self.augment.mixup > 0.0 && rng.uniform() < self.augment.mixup {
            let other = &set.by_class[rng.below(set.by_class.len())];
            if !other.is_empty() {
                augment::mix_in(&mut wave, &other[rng.below(other.len())], rng);
            }
        }
        (wave, set.word_of[class][i])
    }

    /// Left context before the clip: a quarter each of zero state (as offline, returned as
    /// `true`: the frames are added as zeros after the features), noise, other speech,
    /// quiet.
    fn with_left_context(&self, wave: Vec<f32>, rng: &mut Rng) -> (Vec<f32>, bool) {
        let kind = if self.context_frames > 0 {
            rng.below(4)
        } else {
            0
        };
        if kind == 0 {
            return (wave, true);
        }
        let set = self.set;
        let n_ctx = self.context_frames * self.features.hop_length;
        let mut ctx = match kind {
            1 => augment::silence_clip(&set.noise, n_ctx, rng),
            2 => {
                let pool = &set.by_class[rng.below(set.by_class.len())];
                if pool.is_empty() {
                    augment::silence_clip(&set.noise, n_ctx, rng)
                } else {
                    let other = &pool[rng.below(pool.len())];
                    other[other.len().saturating_sub(n_ctx)..].to_vec()
                }
            }
            _ => (0..n_ctx).map(|_| rng.normal() * 1e-4).collect(),
        };
        ctx.resize(n_ctx, 0.0);
        ctx.extend_from_slice(&wave);
        (ctx, false)
    }
}
