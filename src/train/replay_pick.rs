//! Replay material chosen from a Speech Commands folder: clips of every class of a model
//! from its training and validation speakers (never the test speakers) and background
//! noise, part of it held apart. `retrain --replay DIR` picks generously
//! (`Caps::RETRAIN`); a model file carries a smaller pick (`Caps::MODEL_FILE`), so that
//! `retrain` protects the old words where the folder is not at hand.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::audio::{fit_length, load_wav};
use crate::config::UNKNOWN;
use crate::data::{Dataset, Split, label_index};
use crate::model::Model;
use crate::replay::{Part, ReplayStore, storage_rate};
use crate::util::{Rng, parallel_map};

/// How much of each kind is picked.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Training-speaker clips per class, and of `_unknown_` (many and varied words, and
    /// what new words must not take).
    pub per_class: usize,
    pub unknown: usize,
    /// Validation-speaker clips per class (`_unknown_` included).
    pub validation: usize,
    /// Noise recordings for fitting and for the report, each cut to `noise_seconds`.
    pub noise_files: usize,
    pub noise_seconds: f32,
}

impl Caps {
    pub const RETRAIN: Caps = Caps {
        per_class: 60,
        unknown: 240,
        validation: 60,
        noise_files: 60,
        noise_seconds: f32::INFINITY,
    };
    /// About 2.8 MB at 8 kHz for the 12 classes of Speech Commands.
    pub const MODEL_FILE: Caps = Caps {
        per_class: 16,
        unknown: 64,
        validation: 10,
        noise_files: 12,
        noise_seconds: 3.0,
    };
}

/// (word, part, samples at `rate`) for the classes of `labels`, leaving out `skip` words.
pub fn pick(
    ds: &Dataset,
    labels: &[String],
    skip: &[String],
    rate: u32,
    caps: &Caps,
    rng: &mut Rng,
) -> Vec<(String, Part, Vec<f32>)> {
    let mut out = pick_words(ds, labels, skip, rate, caps, rng);
    let (noise, noise_val) = held_apart_noise(ds, rate, caps.noise_files);
    let cut = |x: Vec<f32>| {
        let n = (caps.noise_seconds * rate as f32).min(x.len() as f32) as usize;
        x[..n].to_vec()
    };
    out.extend(
        noise
            .into_iter()
            .map(|x| (String::new(), Part::Noise, cut(x))),
    );
    out.extend(
        noise_val
            .into_iter()
            .map(|x| (String::new(), Part::NoiseValidation, cut(x))),
    );
    out
}

/// The store a model file carries: `Caps::MODEL_FILE` from `ds`, at the storage rate.
pub fn model_file_store(model: &Model, ds: &Dataset, seed: u64) -> Result<Arc<ReplayStore>> {
    let f = &model.config.features;
    let clips = pick(
        ds,
        model.labels(),
        &[],
        f.sample_rate,
        &Caps::MODEL_FILE,
        &mut Rng::new(seed),
    );
    let rate = storage_rate(f.fmax, f.sample_rate);
    let store = ReplayStore::from_clips(rate, f.sample_rate, clips).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(store))
}

/// Word clips of the classes of `labels`, shuffled, up to the caps per class and split.
fn pick_words(
    ds: &Dataset,
    labels: &[String],
    skip: &[String],
    rate: u32,
    caps: &Caps,
    rng: &mut Rng,
) -> Vec<(String, Part, Vec<f32>)> {
    let unk = labels.iter().position(|l| l == UNKNOWN);
    let mut by_class: BTreeMap<usize, Vec<(PathBuf, &str, Split)>> = BTreeMap::new();
    for c in ds.clips.iter().filter(|c| c.split != Split::Test) {
        if skip.contains(&c.word) {
            continue;
        }
        if let Some(l) = label_index(labels, &c.word) {
            by_class
                .entry(l)
                .or_default()
                .push((c.path.clone(), &c.word, c.split));
        }
    }
    let mut jobs = Vec::new();
    for (l, mut v) in by_class {
        rng.shuffle(&mut v);
        let train_cap = if Some(l) == unk {
            caps.unknown
        } else {
            caps.per_class
        };
        let (mut nt, mut nv) = (0, 0);
        for (p, w, s) in v {
            let (part, n, cap) = match s {
                Split::Validation => (Part::Validation, &mut nv, caps.validation),
                _ => (Part::Train, &mut nt, train_cap),
            };
            if *n < cap {
                *n += 1;
                jobs.push((p, w.to_string(), part));
            }
        }
    }
    let loaded = parallel_map(&jobs, |(p, _, _)| {
        load_wav(p, rate).map(|x| fit_length(&x, rate as usize))
    });
    jobs.into_iter()
        .zip(loaded)
        .filter_map(|((_, w, part), x)| x.ok().map(|x| (w, part, x)))
        .collect()
}

/// Background noise for fitting and, held apart from it, for the report. When the
/// splits have their own noise files they are used; when one set of recordings serves
/// every split (the full archive's six), each recording's last fifth is held apart.
fn held_apart_noise(ds: &Dataset, rate: u32, files: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let train_files = ds.noise_for(Split::Train);
    let val_files = ds.noise_for(Split::Validation);
    let load = |list: &[PathBuf]| -> Vec<Vec<f32>> {
        list.iter()
            .take(files)
            .filter_map(|p| load_wav(p, rate).ok())
            .collect()
    };
    if train_files.iter().all(|p| !val_files.contains(p)) {
        return (load(&train_files), load(&val_files));
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for x in load(&train_files) {
        let cut = x.len() * 4 / 5;
        val.push(x[cut..].to_vec());
        train.push(x[..cut].to_vec());
    }
    (train, val)
}
