//! Speech Commands in its official layout (`<word>/<speaker>_nohash_<n>.wav`,
//! `_background_noise_/`): scanning, the speaker-disjoint hash split, and labels.
//!
//! Works unchanged on the shared part and on the full v0.02 archive; when the archive's
//! `validation_list.txt` / `testing_list.txt` exist they decide the split.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::{GSC_COMMANDS, SILENCE, UNKNOWN};

pub const BACKGROUND_DIR: &str = "_background_noise_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// One labelled clip on disk.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: PathBuf,
    /// Folder name (the spoken word).
    pub word: String,
    pub speaker: String,
    pub split: Split,
}

#[derive(Debug, Default)]
pub struct Dataset {
    pub clips: Vec<Clip>,
    /// Background-noise recordings with their split.
    pub noise: Vec<(PathBuf, Split)>,
}

/// How clips are assigned to train / validation / test; always by speaker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SplitRule {
    /// The archive's list files when present, else the dataset README's hash rule. On the
    /// shared part, whose clips come mostly from the official test archive, this leaves
    /// only ~400 clips for training.
    Official,
    /// The same hash rule over the speaker id salted with "spikeword": a fresh 80/10/10
    /// speaker-disjoint split for folders that are not the full archive.
    Salted,
}

/// Split of a file under a rule.
pub fn split_of(file_name: &str, rule: &SplitRule) -> Split {
    match rule {
        SplitRule::Official => hash_split(file_name),
        SplitRule::Salted => hash_split(&format!("spikeword:{}", speaker_of(file_name))),
    }
}

/// The dataset README's rule: SHA-1 of the name before `_nohash_`, modulo 2^27 − 1 + 1,
/// as a percentage; < 10 validation, < 20 test (10 % / 10 %), else train.
pub fn hash_split(file_name: &str) -> Split {
    let base = file_name.split("_nohash_").next().unwrap_or(file_name);
    let digest = sha1_smol::Sha1::from(base.as_bytes()).digest().bytes();
    const MAX_NUM_WAVS_PER_CLASS: u64 = (1 << 27) - 1;
    // int(hex, 16) % 2^27 is the low 27 bits of the 160-bit number.
    let low = u32::from_be_bytes([digest[16], digest[17], digest[18], digest[19]]) as u64;
    let pct = (low % (MAX_NUM_WAVS_PER_CLASS + 1)) as f64 * (100.0 / MAX_NUM_WAVS_PER_CLASS as f64);
    if pct < 10.0 {
        Split::Validation
    } else if pct < 20.0 {
        Split::Test
    } else {
        Split::Train
    }
}

pub fn speaker_of(file_name: &str) -> String {
    file_name
        .split("_nohash_")
        .next()
        .unwrap_or(file_name)
        .to_string()
}

fn read_list(root: &Path, name: &str) -> Option<HashSet<String>> {
    let text = std::fs::read_to_string(root.join(name)).ok()?;
    Some(
        text.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

fn wavs_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    v.sort();
    Ok(v)
}

impl Dataset {
    /// Scans a Speech-Commands-layout folder.
    pub fn scan(root: &Path, rule: &SplitRule) -> anyhow::Result<Dataset> {
        if !root.is_dir() {
            anyhow::bail!("data folder {} not found", root.display());
        }
        let (val, test) = match rule {
            SplitRule::Official => (
                read_list(root, "validation_list.txt"),
                read_list(root, "testing_list.txt"),
            ),
            SplitRule::Salted => (None, None),
        };
        let mut ds = Dataset::default();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let word = dir.file_name().unwrap().to_string_lossy().to_string();
            if word == BACKGROUND_DIR {
                for p in wavs_in(&dir)? {
                    let name = p.file_name().unwrap().to_string_lossy().to_string();
                    ds.noise.push((p, split_of(&name, rule)));
                }
                continue;
            }
            if word.starts_with('_') || word.starts_with('.') {
                continue;
            }
            for p in wavs_in(&dir)? {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                let rel = format!("{word}/{name}");
                let split = match (&val, &test) {
                    (Some(v), Some(t)) => {
                        if v.contains(&rel) {
                            Split::Validation
                        } else if t.contains(&rel) {
                            Split::Test
                        } else {
                            Split::Train
                        }
                    }
                    _ => split_of(&name, rule),
                };
                ds.clips.push(Clip {
                    speaker: speaker_of(&name),
                    path: p,
                    word: word.clone(),
                    split,
                });
            }
        }
        if ds.clips.is_empty() {
            anyhow::bail!("no <word>/*.wav clips under {}", root.display());
        }
        Ok(ds)
    }

    pub fn split(&self, s: Split) -> impl Iterator<Item = &Clip> {
        self.clips.iter().filter(move |c| c.split == s)
    }

    /// The background recordings of a split as samples at `rate` (unreadable ones left
    /// out: noise is augmentation, not data to account for).
    pub fn noise_waves(&self, s: Split, rate: u32) -> Vec<Vec<f32>> {
        self.noise_for(s)
            .iter()
            .filter_map(|p| crate::audio::load_wav(p, rate).ok())
            .collect()
    }

    /// Background files for a split; when the hash leaves a split without any (the full
    /// archive has only six long recordings), every file serves it.
    pub fn noise_for(&self, s: Split) -> Vec<PathBuf> {
        let own: Vec<PathBuf> = self
            .noise
            .iter()
            .filter(|(_, x)| *x == s)
            .map(|(p, _)| p.clone())
            .collect();
        if own.is_empty() {
            self.noise.iter().map(|(p, _)| p.clone()).collect()
        } else {
            own
        }
    }
}

/// The label set of a task.
pub fn task_labels(task: Task, ds: Option<&Dataset>) -> Vec<String> {
    match task {
        Task::Gsc12 => GSC_COMMANDS
            .iter()
            .map(|s| s.to_string())
            .chain([SILENCE.to_string(), UNKNOWN.to_string()])
            .collect(),
        Task::Gsc35 => {
            let mut words: Vec<String> = ds
                .map(|d| {
                    let set: HashSet<&str> = d.clips.iter().map(|c| c.word.as_str()).collect();
                    set.into_iter().map(String::from).collect()
                })
                .unwrap_or_default();
            words.sort();
            words.push(SILENCE.to_string());
            words
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Task {
    /// 10 commands + _silence_ + _unknown_.
    Gsc12,
    /// Every word of the dataset + _silence_.
    Gsc35,
}

/// Maps a folder word to a class index: unknown words go to `_unknown_` (when the label
/// set has it), otherwise `None`.
pub fn label_index(labels: &[String], word: &str) -> Option<usize> {
    let map: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    map.get(word).copied().or_else(|| map.get(UNKNOWN).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_split_keeps_speakers_together_and_balances() {
        let mut by_speaker: HashMap<String, Split> = HashMap::new();
        let mut counts: HashMap<Split, usize> = HashMap::new();
        for i in 0..3000u32 {
            for n in 0..3 {
                let name = format!("{:08x}_nohash_{n}.wav", i * 7919);
                let s = split_of(&name, &SplitRule::Salted);
                assert_eq!(*by_speaker.entry(speaker_of(&name)).or_insert(s), s);
                *counts.entry(s).or_insert(0) += 1;
            }
        }
        assert!(counts[&Split::Train] > 6 * counts[&Split::Test]);
    }

    #[test]
    fn hash_split_matches_the_reference_implementation() {
        // Values computed with the dataset README's Python `which_set` function: one
        // name of each split, two of them near a boundary (8.36 % and 19.31 %).
        for (name, want) in [
            ("439c84f4_nohash_1.wav", Split::Validation),
            ("c6ee87a7_nohash_1.wav", Split::Validation),
            ("022cd682_nohash_0.wav", Split::Test),
            ("0cb74144_nohash_1.wav", Split::Test),
            ("51055bda_nohash_4.wav", Split::Train),
            ("6272b231_nohash_1.wav", Split::Train),
        ] {
            assert_eq!(hash_split(name), want, "{name}");
        }
        assert_eq!(hash_split("0a7c2a8d_nohash_0.wav"), Split::Train);
        assert_eq!(
            hash_split("0a7c2a8d_nohash_0.wav"),
            hash_split("0a7c2a8d_nohash_3.wav")
        );
        let mut counts = HashMap::new();
        for i in 0..5000u32 {
            *counts
                .entry(hash_split(&format!("{i:08x}_nohash_0.wav")))
                .or_insert(0) += 1;
        }
        let v = counts[&Split::Validation] as f64 / 5000.0;
        let t = counts[&Split::Test] as f64 / 5000.0;
        assert!(
            (0.08..0.12).contains(&v) && (0.08..0.12).contains(&t),
            "{v} {t}"
        );
    }
}
