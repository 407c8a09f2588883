//! Few-shot retraining: new words from a handful of recordings, old words kept.
//!
//! The trained spiking layers stay frozen; the readout (a linear map into leaky
//! integrators, averaged over time) is refitted for the old classes plus the new ones.
//! With the spiking layers frozen the readout is a linear model of time-weighted spike
//! counts, so it is fitted directly (softmax regression with Adam) on features of
//! heavily augmented examples, together with replayed examples of the old classes,
//! unknown words and noise, so the old words do not degrade and the new ones do not
//! fire on everything. No burn graph is needed, which is why it takes seconds.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::augment::{self, AugmentConfig};
use super::data::{Dataset, Split, SplitRule, label_index};
use crate::audio::{fit_length, load_wav};
use crate::config::{SILENCE, UNKNOWN};
use crate::eval::{argmax, parallel_map};
use crate::features::{MelFrame, with_mel_frame};
use crate::model::Model;
use crate::snn::{Mode, Readout};
use crate::util::Rng;

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
    /// Held-out accuracy on replayed old classes (Speech Commands validation speakers).
    pub old_accuracy: Option<f64>,
    /// Share of held-out unknown words / noise clips taken for one of the new words.
    pub false_accept_unknown: Option<f64>,
    pub false_accept_noise: Option<f64>,
    /// Logit offset taken off the new words to keep the old classes (0: none needed).
    pub new_word_bias_shift: f32,
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

/// Time-weighted spike counts of the last spiking layer: the readout's input, one vector
/// per distinct readout leak. The mean leaky readout over decision frames `t0..T` weighs
/// the spikes of frame `u` by `(β^max(t0−u, 0) − β^(T−u)) / (T − t0)`.
fn features(model: &Model, mf: &mut MelFrame, x: &[f32], betas: &[f32]) -> Vec<Vec<f32>> {
    let (input, _) = model.encode(mf, x);
    let net = &model.net;
    let c_in = net.layers[0].c_in;
    let t = input.len() / c_in;
    let mut st = net.new_state();
    let t0 = net.config.decision_start(0, t);
    let last = net.layers.len() - 1;
    let c = net.readout.c_in;
    // One extra entry per set: Σ_t weights[t], the factor the bias gets.
    let mut out = vec![vec![0f32; c + 1]; betas.len()];
    for (ti, frame) in input.chunks_exact(c_in).enumerate() {
        net.step(&mut st, frame, Mode::Event);
        let spikes = st.layer_output(last);
        for (bi, &b) in betas.iter().enumerate() {
            let w =
                (b.powi(t0.saturating_sub(ti) as i32) - b.powi((t - ti) as i32)) / (t - t0) as f32;
            for (o, s) in out[bi].iter_mut().zip(spikes) {
                *o += w * s;
            }
            out[bi][c] += w;
        }
    }
    out
}

struct Sample {
    feats: Vec<Vec<f32>>,
    label: usize,
}

/// Softmax regression of the readout rows `w[c]` (`[in]`) and biases on fixed features.
fn fit_readout(
    readout: &mut Readout,
    trainable: &[bool],
    beta_index: &[usize],
    train: &[Sample],
    epochs: usize,
    scale: f32,
    rng: &mut Rng,
) {
    let (n_in, n_cls) = (readout.c_in, readout.n_classes);
    // Work in row-major [class][in] and convert back.
    let mut w: Vec<f32> = (0..n_cls * n_in)
        .map(|k| readout.w[(k % n_in) * n_cls + k / n_in])
        .collect();
    let mut b = readout.bias.clone();
    let (mut mw, mut vw) = (vec![0f32; w.len()], vec![0f32; w.len()]);
    let (mut mb, mut vb) = (vec![0f32; n_cls], vec![0f32; n_cls]);
    let lr = 0.01f32;
    let (b1, b2) = (0.9f32, 0.999f32);
    // Class-balanced weights so a few new examples count as much as many replays.
    let mut counts = vec![0usize; n_cls];
    train.iter().for_each(|s| counts[s.label] += 1);
    let cw: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c > 0 {
                train.len() as f32 / (n_cls as f32 * c as f32)
            } else {
                0.0
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut step = 0i32;
    let batch = 32;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let mut gw = vec![0f32; w.len()];
            let mut gb = vec![0f32; n_cls];
            for &i in chunk {
                let s = &train[i];
                // logits_c = scale · (w_c · f_{β(c)} + b_c · Σ_t weights[t])
                let logits: Vec<f32> = (0..n_cls)
                    .map(|c| {
                        let f = &s.feats[beta_index[c]];
                        scale
                            * (w[c * n_in..(c + 1) * n_in]
                                .iter()
                                .zip(f)
                                .map(|(a, x)| a * x)
                                .sum::<f32>()
                                + b[c] * f[n_in])
                    })
                    .collect();
                let p = crate::model::softmax(&logits);
                for c in 0..n_cls {
                    let g = cw[s.label] * scale * (p[c] - (c == s.label) as u8 as f32)
                        / chunk.len() as f32;
                    let f = &s.feats[beta_index[c]];
                    gb[c] += g * f[n_in];
                    for (gw, x) in gw[c * n_in..(c + 1) * n_in].iter_mut().zip(f) {
                        *gw += g * x;
                    }
                }
            }
            step += 1;
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            for k in 0..w.len() {
                if !trainable[k / n_in] {
                    continue;
                }
                let g = gw[k] + 1e-4 * w[k];
                mw[k] = b1 * mw[k] + (1.0 - b1) * g;
                vw[k] = b2 * vw[k] + (1.0 - b2) * g * g;
                w[k] -= lr * (mw[k] / c1) / ((vw[k] / c2).sqrt() + 1e-8);
            }
            for c in (0..n_cls).filter(|&c| trainable[c]) {
                mb[c] = b1 * mb[c] + (1.0 - b1) * gb[c];
                vb[c] = b2 * vb[c] + (1.0 - b2) * gb[c] * gb[c];
                b[c] -= lr * (mb[c] / c1) / ((vb[c] / c2).sqrt() + 1e-8);
            }
        }
    }
    for c in 0..n_cls {
        for i in 0..n_in {
            readout.w[i * n_cls + c] = w[c * n_in + i];
        }
    }
    readout.bias = b;
}

fn logits(model: &Model, s: &Sample, beta_index: &[usize]) -> Vec<f32> {
    let r = &model.net.readout;
    (0..r.n_classes)
        .map(|c| {
            let f = &s.feats[beta_index[c]];
            (0..r.c_in)
                .map(|i| r.w[i * r.n_classes + c] * f[i])
                .sum::<f32>()
                + r.bias[c] * f[r.c_in]
        })
        .collect()
}

fn predict(model: &Model, s: &Sample, beta_index: &[usize]) -> usize {
    argmax(&logits(model, s, beta_index))
}

/// Lowers the new classes' biases (all by the same logit offset) until at most
/// `max_drop` of the held-out old-class clips that the old rows alone get right are taken
/// over by a new word. Returns the offset applied (0 when none was needed).
fn guard_old_classes(
    model: &mut Model,
    beta_index: &[usize],
    old_clips: &[&Sample],
    new_idx: &HashSet<usize>,
    max_drop: f64,
) -> f32 {
    // How far above the true class the best new word is, for each clip the old rows get right.
    let mut over: Vec<f32> = old_clips
        .iter()
        .filter_map(|s| {
            let z = logits(model, s, beta_index);
            let best = |new: bool| {
                z.iter()
                    .enumerate()
                    .filter(|(c, _)| new_idx.contains(c) == new)
                    .map(|(c, v)| (c, *v))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            };
            let (old_c, _) = best(false)?;
            let (_, new_z) = best(true)?;
            (old_c == s.label).then_some(new_z - z[s.label])
        })
        .collect();
    over.sort_by(|a, b| b.total_cmp(a));
    let allowed = (max_drop * old_clips.len() as f64).floor() as usize;
    let shift = match over.get(allowed) {
        Some(&d) if d >= 0.0 => d + 1e-4,
        _ => return 0.0,
    };
    // logit_c = w_c·f + b_c·Σweights: a bias change moves the logit by Σweights times it.
    let r = &mut model.net.readout;
    for &c in new_idx {
        let sum_w = old_clips[0].feats[beta_index[c]][r.c_in].max(1e-6);
        r.bias[c] -= shift / sum_w;
    }
    shift
}

/// Retrains `base` on the examples; returns the new model and the report.
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
    let new_words: Vec<String> = examples
        .iter()
        .map(|e| e.word.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let old: Vec<String> = base.labels().to_vec();
    if !opts.replace {
        for w in &new_words {
            if old.contains(w) {
                bail!(
                    "word '{w}' is already a label of the base model ({}); rename its folder or use --replace",
                    old.join(" ")
                );
            }
        }
    }
    let labels: Vec<String> = if opts.replace {
        new_words
            .iter()
            .cloned()
            .chain([SILENCE.to_string(), UNKNOWN.to_string()])
            .collect()
    } else {
        old.iter()
            .cloned()
            .chain(new_words.iter().cloned())
            .collect()
    };
    let mut per_word: BTreeMap<String, usize> = BTreeMap::new();
    for e in &examples {
        *per_word.entry(e.word.clone()).or_insert(0) += 1;
    }
    let few: Vec<String> = per_word
        .iter()
        .filter(|(_, n)| (2..5).contains(*n))
        .map(|(w, n)| format!("{w} ({n})"))
        .collect();
    for (w, n) in &per_word {
        if *n == 1 {
            warnings.push(format!("'{w}' has a single example: no validation possible and accuracy will be poor; record 5-10"));
        }
    }
    if !few.is_empty() {
        warnings.push(format!(
            "few examples for {}: 5-10 per word work much better",
            few.join(", ")
        ));
    }

    // The new model: same network, readout widened (old rows kept) or replaced.
    let mut model = base.clone();
    model.config.labels = labels.clone();
    let r = &base.net.readout;
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
    model.net.readout = readout;
    // Distinct leaks → feature sets.
    let mut betas: Vec<f32> = Vec::new();
    let beta_index: Vec<usize> = model
        .net
        .readout
        .beta
        .iter()
        .map(|b| match betas.iter().position(|x| x == b) {
            Some(i) => i,
            None => {
                betas.push(*b);
                betas.len() - 1
            }
        })
        .collect();

    // Validation: one held-out speaker per word when speakers are known, else 20 %.
    let speakers: HashSet<&str> = examples.iter().map(|e| e.speaker.as_str()).collect();
    let by_speaker = speakers.len() >= 2 && speakers.len() < examples.len();
    let mut rng = Rng::new(opts.seed);
    let mut held = vec![false; examples.len()];
    let validation_by;
    if by_speaker {
        let mut spk: Vec<&str> = speakers.into_iter().collect();
        spk.sort();
        let pick = spk[rng.below(spk.len())].to_string();
        for (h, e) in held.iter_mut().zip(&examples) {
            *h = e.speaker == pick;
        }
        validation_by = format!("held-out speaker '{pick}'");
    } else {
        let mut idx_by_word: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in examples.iter().enumerate() {
            idx_by_word.entry(&e.word).or_default().push(i);
        }
        for v in idx_by_word.values_mut() {
            rng.shuffle(v);
            // One in five held out, at least one once a word has three examples.
            let k = if v.len() >= 3 {
                (v.len() / 5).max(1)
            } else {
                0
            };
            for &i in v.iter().take(k) {
                held[i] = true;
            }
        }
        validation_by = "20 % of the examples of each word".into();
    }

    // Replay: old classes, unknown words and noise from Speech Commands (training speakers
    // for fitting, validation speakers for the report). Words that are now labels are not
    // replayed as unknown.
    let mut replay_train: Vec<(Vec<f32>, usize, bool)> = Vec::new();
    let mut replay_val: Vec<(Vec<f32>, usize, &'static str)> = Vec::new();
    let mut noise: Vec<Vec<f32>> = Vec::new();
    match &opts.replay {
        Some(dir) if dir.is_dir() => {
            let rule: SplitRule = serde_json::from_value(base.training["split_rule"].clone()).unwrap_or(SplitRule::Official);
            let ds = Dataset::scan(dir, &rule)?;
            noise = ds.noise_for(Split::Train).iter().take(60).filter_map(|p| load_wav(p, rate).ok()).collect();
            let unk = labels.iter().position(|l| l == UNKNOWN);
            let mut by_class: BTreeMap<usize, Vec<(PathBuf, Split)>> = BTreeMap::new();
            for c in &ds.clips {
                if new_words.contains(&c.word) {
                    continue;
                }
                let Some(l) = label_index(&labels, &c.word) else { continue };
                if c.split == Split::Test {
                    continue;
                }
                by_class.entry(l).or_default().push((c.path.clone(), c.split));
            }
            let mut jobs = Vec::new();
            for (l, mut v) in by_class {
                rng.shuffle(&mut v);
                let (mut nt, mut nv) = (0, 0);
                for (p, s) in v {
                    let is_val = s == Split::Validation;
                    if (is_val && nv < 60) || (!is_val && nt < 60) {
                        if is_val { nv += 1 } else { nt += 1 }
                        jobs.push((p, l, is_val));
                    }
                }
            }
            let loaded = parallel_map(&jobs, |(p, _, _)| load_wav(p, rate).map(|x| fit_length(&x, rate as usize)));
            for ((_, l, is_val), x) in jobs.into_iter().zip(loaded) {
                let Ok(x) = x else { continue };
                if is_val {
                    replay_val.push((x, l, if Some(l) == unk { "unknown" } else { "old" }));
                } else {
                    replay_train.push((x, l, false));
                }
            }
            if let Some(si) = labels.iter().position(|l| l == SILENCE) {
                for k in 0..60 {
                    let x = augment::silence_clip(&noise, rate as usize, &mut rng);
                    if k < 20 {
                        replay_val.push((x.clone(), si, "noise"));
                    }
                    replay_train.push((x, si, true));
                }
            }
        }
        _ => warnings.push("no replay data (Speech Commands folder): old words may drift and new words may fire on noise; pass --replay DIR".into()),
    }

    // Features of augmented copies.
    let aug = AugmentConfig {
        noise_prob: if noise.is_empty() { 0.0 } else { 0.7 },
        ..AugmentConfig::default()
    };
    let word_index = |w: &str| labels.iter().position(|l| l == w).expect("word is a label");
    let mut jobs: Vec<(Vec<f32>, usize, u64)> = Vec::new();
    for (e, h) in examples.iter().zip(&held) {
        if !h {
            for k in 0..opts.copies.max(1) {
                jobs.push((
                    e.samples.clone(),
                    word_index(&e.word),
                    if k == 0 { 0 } else { rng.next_u64() },
                ));
            }
        }
    }
    for e in &extra {
        if new_words.contains(&e.word) {
            for k in 0..(opts.copies / 4).max(1) {
                jobs.push((
                    e.samples.clone(),
                    word_index(&e.word),
                    if k == 0 { 0 } else { rng.next_u64() },
                ));
            }
        }
    }
    for (x, l, _) in &replay_train {
        jobs.push((x.clone(), *l, rng.next_u64()));
    }
    // Features depend only on the frozen spiking layers.
    let frozen = model.clone();
    let feats = |x: &[f32], seed: u64| {
        let y = if seed == 0 {
            x.to_vec()
        } else {
            augment::augment_wave(x, &noise, &aug, rate, &mut Rng::new(seed))
        };
        with_mel_frame(&frozen.config.features, |mf| {
            features(&frozen, mf, &y, &betas)
        })
    };
    let train: Vec<Sample> = parallel_map(&jobs, |(x, l, s)| Sample {
        feats: feats(x, *s),
        label: *l,
    });
    // The old words keep their readout rows: only the new rows are fitted (with the old
    // classes and the replay as the competition), so old-vs-old decisions stay the base's.
    let trainable: Vec<bool> = labels
        .iter()
        .map(|l| opts.replace || opts.finetune_epochs > 0 || !old.contains(l))
        .collect();
    fit_readout(
        &mut model.net.readout,
        &trainable,
        &beta_index,
        &train,
        opts.epochs,
        model.config.network.logit_scale,
        &mut rng,
    );
    if opts.finetune_epochs > 0 {
        finetune(
            &mut model,
            &jobs,
            &noise,
            &aug,
            opts.finetune_epochs,
            &mut rng,
        )?;
    }
    // Validation features from the final network.
    let fitted = model.clone();
    let vfeats = |x: &[f32]| {
        with_mel_frame(&fitted.config.features, |mf| {
            features(&fitted, mf, x, &betas)
        })
    };

    // Report.
    let val_new: Vec<(usize, Sample)> = examples
        .iter()
        .zip(&held)
        .filter(|(_, h)| **h)
        .map(|(e, _)| {
            (
                0,
                Sample {
                    feats: vfeats(&e.samples),
                    label: word_index(&e.word),
                },
            )
        })
        .collect();
    let rv: Vec<(&str, Sample)> = replay_val
        .iter()
        .map(|(x, l, k)| {
            (
                *k,
                Sample {
                    feats: vfeats(x),
                    label: *l,
                },
            )
        })
        .collect();
    let new_idx: HashSet<usize> = new_words.iter().map(|w| word_index(w)).collect();
    let guard_shift = if opts.replace {
        0.0
    } else {
        let samples: Vec<&Sample> = rv.iter().map(|(_, s)| s).collect();
        guard_old_classes(
            &mut model,
            &beta_index,
            &samples,
            &new_idx,
            opts.max_old_drop,
        )
    };
    let acc = |v: &[(usize, Sample)]| -> Option<f64> {
        (!v.is_empty()).then(|| {
            v.iter()
                .filter(|(_, s)| predict(&model, s, &beta_index) == s.label)
                .count() as f64
                / v.len() as f64
        })
    };
    let validation_accuracy = acc(&val_new);
    let old_v: Vec<(usize, Sample)> = rv
        .iter()
        .filter(|(k, _)| *k == "old")
        .map(|(_, s)| {
            (
                0,
                Sample {
                    feats: s.feats.clone(),
                    label: s.label,
                },
            )
        })
        .collect();
    let fa = |kind: &str| -> Option<f64> {
        let v: Vec<&Sample> = rv
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, s)| s)
            .collect();
        (!v.is_empty()).then(|| {
            v.iter()
                .filter(|s| new_idx.contains(&predict(&model, s, &beta_index)))
                .count() as f64
                / v.len() as f64
        })
    };
    // Confusable new words: > 25 % of one's held-out examples taken for another.
    for a in &new_words {
        let ia = word_index(a);
        let mine: Vec<&Sample> = val_new
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.label == ia)
            .collect();
        for b in &new_words {
            let ib = word_index(b);
            if ia != ib && !mine.is_empty() {
                let k = mine
                    .iter()
                    .filter(|s| predict(&model, s, &beta_index) == ib)
                    .count();
                if k * 4 > mine.len() {
                    warnings.push(format!("'{a}' is often taken for '{b}' ({k}/{} held-out examples): confusable words", mine.len()));
                }
            }
        }
    }
    let report = RetrainReport {
        labels: labels.clone(),
        new_words: new_words.clone(),
        examples_per_word: per_word,
        validation_accuracy,
        validation_n: val_new.len(),
        validation_by,
        old_accuracy: acc(&old_v),
        false_accept_unknown: fa("unknown"),
        false_accept_noise: fa("noise"),
        new_word_bias_shift: guard_shift,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    };
    model.training = serde_json::json!({
        "retrained_from": base.training.get("date").cloned().unwrap_or_default(),
        "base_test_accuracy": base.training.get("test_accuracy").cloned().unwrap_or_default(),
        "split_rule": base.training.get("split_rule").cloned().unwrap_or_default(),
        "retrain": report,
        "date": super::trainer::chrono_free_date(),
    });
    Ok((model, report))
}

/// Fine-tunes every parameter (spiking layers, leaks, thresholds, readout) at a low
/// learning rate with surrogate gradients, on the augmented examples and the replay.
fn finetune(
    model: &mut Model,
    jobs: &[(Vec<f32>, usize, u64)],
    noise: &[Vec<f32>],
    aug: &AugmentConfig,
    epochs: usize,
    rng: &mut Rng,
) -> Result<()> {
    use burn::optim::{AdamConfig, GradientsParams, grad_clipping::GradientClippingConfig};
    use burn::tensor::{Device, Int, Tensor, TensorData};
    let dev = Device::flex().autodiff();
    let mut tn = super::net::TrainNet::from_network(&model.net, &dev);
    let mut optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let rate = model.config.features.sample_rate;
    let c = model
        .config
        .encoder
        .out_channels(model.config.features.n_mels);
    let frozen = model.clone();
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        let seeds: Vec<(usize, u64)> = order.iter().map(|&i| (i, rng.next_u64())).collect();
        let inputs: Vec<Vec<f32>> = parallel_map(&seeds, |(i, seed)| {
            let (x, _, _) = &jobs[*i];
            let y = augment::augment_wave(x, noise, aug, rate, &mut Rng::new(*seed));
            let (enc, _) = frozen.encode(&mut MelFrame::new(&frozen.config.features), &y);
            super::net::channels_first(&enc, c)
        });
        for (chunk, xs) in seeds.chunks(32).zip(inputs.chunks(32)) {
            let b = chunk.len();
            let t = xs[0].len() / c;
            let x: Tensor<3> = Tensor::from_data(TensorData::new(xs.concat(), [b, c, t]), &dev);
            let y: Tensor<1, Int> = Tensor::from_data(
                TensorData::new(
                    chunk
                        .iter()
                        .map(|(i, _)| jobs[*i].1 as i64)
                        .collect::<Vec<_>>(),
                    [b],
                ),
                &dev,
            );
            let f = tn.forward(x);
            let l = super::net::loss(&f, y, 0.03, 4.0);
            let grads = GradientsParams::from_grads(l.backward(), &tn);
            tn = optim.step(3e-4, tn, grads).clamp();
        }
    }
    model.net = tn.to_network();
    Ok(())
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
