//! Labelled clips in memory, read from a Speech Commands folder for a model's labels.

use std::path::Path;

use crate::audio::{fit_length, load_wav};
use crate::config::SILENCE;
use crate::util::parallel_map;

use super::gsc::{Dataset, Split, label_index};

/// A clip in memory with its class index and the word spoken (its folder; `_silence_`
/// for noise crops).
#[derive(Debug, Clone)]
pub struct LabeledAudio {
    pub name: String,
    pub samples: Vec<f32>,
    pub label: usize,
    pub word: String,
}

/// Loads the clips of `split` (all when `None`) under a Speech Commands folder, labelled for
/// `labels`: other words become `_unknown_`, 1 s crops of background noise `_silence_`.
/// Unreadable files are skipped and counted.
pub fn load_labeled(
    ds: &Dataset,
    split: Option<Split>,
    labels: &[String],
    rate: u32,
) -> (Vec<LabeledAudio>, Vec<(String, String)>) {
    let len = rate as usize;
    let wanted: Vec<(&Path, usize, &str)> = ds
        .clips
        .iter()
        .filter(|c| split.is_none_or(|s| c.split == s))
        .filter_map(|c| {
            label_index(labels, &c.word).map(|l| (c.path.as_path(), l, c.word.as_str()))
        })
        .collect();
    let loaded = parallel_map(&wanted, |(p, l, w)| {
        load_wav(p, rate).map(|x| LabeledAudio {
            name: p.display().to_string(),
            samples: fit_length(&x, len),
            label: *l,
            word: w.to_string(),
        })
    });
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for ((p, _, _), r) in wanted.iter().zip(loaded) {
        match r {
            Ok(a) => out.push(a),
            Err(e) => failed.push((p.display().to_string(), e.to_string())),
        }
    }
    if let Some(si) = labels.iter().position(|l| l == SILENCE) {
        let noise: Vec<_> = match split {
            Some(s) => ds.noise_for(s),
            None => ds.noise.iter().map(|(p, _)| p.clone()).collect(),
        };
        for p in noise {
            match load_wav(&p, rate) {
                Ok(x) => {
                    // Consecutive 1 s crops (the shared folder's files are 1 s already).
                    for (k, c) in x.chunks(len).enumerate() {
                        if c.len() * 2 >= len {
                            out.push(LabeledAudio {
                                name: format!("{}#{k}", p.display()),
                                samples: fit_length(c, len),
                                label: si,
                                word: SILENCE.to_string(),
                            });
                        }
                    }
                }
                Err(e) => failed.push((p.display().to_string(), e.to_string())),
            }
        }
    }
    (out, failed)
}
